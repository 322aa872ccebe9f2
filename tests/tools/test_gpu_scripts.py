"""The GPU check scripts, smoke-run on CPU with tiny settings so that their plumbing is tested here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("ultralytics")
pytest.importorskip("segment_anything")


def run_script(name: str, work: Path, count: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "tools" / name), str(work), count], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, "PYTHON": sys.executable, **env})


@pytest.mark.slow
def test_sam_gpu_check_runs_on_cpu(tmp_path):
    result = run_script("gpu_check_sam.sh", tmp_path / "sam", "4", PRESET="tiny", MODEL_TYPE="tiny", DEVICE="cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "median optimizer step" in result.stdout and "embedding cache" in result.stdout
    assert "wall time" in result.stdout


@pytest.mark.slow
def test_yolo_world_gpu_check_runs_on_cpu(tmp_path):
    result = run_script("gpu_check_yolo_world.sh", tmp_path / "yw", "1", PRESET="tiny", IMGSZ="128", DEVICE="cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mean time per epoch" in result.stdout and "val mAP50" in result.stdout
