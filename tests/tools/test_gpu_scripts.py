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


@pytest.mark.slow
def test_compare_demo_puts_every_family_on_one_table(tmp_path):
    """tools/compare_demo.sh with the smallest settings: every family trains, predicts the same
    converted test images, is evaluated and lands on one table and one figure."""
    work = tmp_path / "compare"
    result = subprocess.run(["bash", str(ROOT / "tools" / "compare_demo.sh"), str(work)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=900,
                            env={**os.environ, "PYTHON": sys.executable, "PRESET": "tiny", "EPOCHS": "1",
                                 "YW_EPOCHS": "1", "IMGSZ": "64", "SAM_EPOCHS": "1", "AE_EPOCHS": "2",
                                 "AE_SIZE": "32"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in (work / "compare.md").read_text().splitlines()[2:]]
    anomalib = ["anomalib-patchcore"] if (ROOT / ".venv-anomalib" / "bin" / "python").is_file() else []
    assert sorted(r[1] for r in rows) == sorted(["autoencoder", "classifier", "patchcore", "sam", "yolo-world",
                                                 *anomalib])
    by_family = {r[1]: r for r in rows}
    assert by_family["classifier"][8] == "-" and by_family["patchcore"][8] != "-"  # pixel AUROC: maps only
    assert by_family["autoencoder"][8] != "-"
    assert by_family["yolo-world"][11] != "-" and by_family["classifier"][11] == "-"  # box AP50: detectors only
    assert all(r[5] != "-" for r in rows)  # every family says whether an image is defective
    assert (work / "compare.png").stat().st_size > 10_000
