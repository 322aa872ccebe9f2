"""anomalib's models through ``mvtec2coco anomalib``: trained in anomalib's own environment, scored
by our one evaluation; without anomalib, the command says which extra to install."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
ANOMALIB_PYTHON = ROOT / ".venv-anomalib" / "bin" / "python"  # `make anomalib` (a prerequisite of `make test`)


def test_without_anomalib_the_command_names_the_extra(tiny_mvtec, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MVTEC2COCO_ANOMALIB_PYTHON"}
    result = subprocess.run([sys.executable, "-m", "mvtec2coco", "anomalib", "train", "--model", "padim", "--data",
                             str(tiny_mvtec), "--category", "bottle", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, cwd=tmp_path, env={**env, "COLUMNS": "200"})
    assert result.returncode == 2
    assert "mvtec2coco[anomalib]" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    env["MVTEC2COCO_ANOMALIB_PYTHON"] = str(tmp_path / "nowhere" / "python")
    result = subprocess.run([sys.executable, "-m", "mvtec2coco", "anomalib", "train", "--model", "padim", "--data",
                             str(tiny_mvtec), "--out", str(tmp_path / "run")], capture_output=True, text=True,
                            cwd=tmp_path, env=env)
    assert result.returncode == 2 and "MVTEC2COCO_ANOMALIB_PYTHON" in result.stderr
    result = run_cli("anomalib", "train", "--model", "patchcore", "--data", tiny_mvtec, "--seed", str(2**32),
                     "--out", tmp_path / "run")  # beyond what lightning seeds: refused before any work
    assert result.returncode == 2 and "--seed" in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.skipif(not ANOMALIB_PYTHON.is_file(), reason="anomalib's environment is built by `make anomalib`")
def test_padim_trains_predicts_and_lands_on_the_table(tiny_mvtec, tmp_path, monkeypatch):
    monkeypatch.setenv("MVTEC2COCO_ANOMALIB_PYTHON", str(ANOMALIB_PYTHON))
    conv = tmp_path / "conv"
    assert run_cli("convert", tiny_mvtec, "--category", "bottle", "--format", "all", "--split", "0.5,0.25,0.25",
                   "--out", conv).returncode == 0
    run, pred = tmp_path / "run", tmp_path / "pred" / "anomalib_padim"
    result = run_cli("anomalib", "train", "--model", "padim", "--data", tiny_mvtec, "--category", "bottle",
                     "--split", conv / "meta" / "split.csv", "--out", run)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads((run / "run.json").read_text())
    with open(conv / "meta" / "split.csv", newline="") as fh:
        goods = sum(r["subset"] == "train" and r["class"] == "good" for r in csv.DictReader(fh))
    assert info["train_images"] == goods and (run / "model.ckpt").is_file()  # the conversion's train subset's goods
    result = run_cli("anomalib", "predict", run, "--data", conv, "--split", "test", "--out", pred)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((pred / "predictions.json").read_text())
    scores = [i["score"] for i in data["images"]]
    assert data["info"]["family"] == "anomalib-padim" and len(set(scores)) > 1  # raw scores, not saturated
    result = run_cli("evaluate", pred, "--gt", conv, "--split", "test")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((pred / "metrics.json").read_text())
    assert metrics["image"]["auroc"] is not None and metrics["pixel"]["auroc"] > 0.5
    assert run_cli("compare", pred, "--markdown", tmp_path / "t.md").returncode == 0
    assert "anomalib-padim" in (tmp_path / "t.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not ANOMALIB_PYTHON.is_file(), reason="anomalib's environment is built by `make anomalib`")
def test_patchcore_fits_on_the_backbone_weights_it_is_given(tiny_mvtec, tmp_path, monkeypatch):
    """--backbone-weights puts a torchvision state dict into anomalib's timm backbone: the fitted
    checkpoint holds exactly those tensors (so both PatchCores can share one random network); a
    file that does not fit is one clear line and exit 2."""
    import torch
    import torchvision

    monkeypatch.setenv("MVTEC2COCO_ANOMALIB_PYTHON", str(ANOMALIB_PYTHON))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pt")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    run = tmp_path / "run"
    result = run_cli("anomalib", "train", "--model", "patchcore", "--data", tiny_mvtec, "--category", "bottle",
                     "--backbone-weights", tmp_path / "r18.pt", "--out", run)
    assert result.returncode == 0, result.stderr[-2000:]
    check = ("import sys, torch; sd = torch.load(sys.argv[1], map_location='cpu', weights_only=False)['state_dict']; "
             "ref = torch.load(sys.argv[2]); pre = 'model.feature_extractor.feature_extractor.'; "
             "keys = [k for k in sd if k.startswith(pre)]; "
             "print(len(keys), all(torch.equal(sd[k], ref[k[len(pre):]]) for k in keys))")
    done = subprocess.run([str(ANOMALIB_PYTHON), "-c", check, str(run / "model.ckpt"), str(tmp_path / "r18.pt")],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["90", "True"]  # every tensor of layers 1-3 and the stem
    for name, seed in (("again", "0"), ("other", "1")):  # --seed: the coreset is drawn the same way again
        result = run_cli("anomalib", "train", "--model", "patchcore", "--data", tiny_mvtec, "--category", "bottle",
                         "--backbone-weights", tmp_path / "r18.pt", "--seed", seed, "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr[-2000:]
    same = ("import sys, torch; bank = lambda p: torch.load(p, map_location='cpu', weights_only=False)"
            "['state_dict']['model.memory_bank']; print(torch.equal(bank(sys.argv[1]), bank(sys.argv[2])), "
            "torch.equal(bank(sys.argv[1]), bank(sys.argv[3])))")
    done = subprocess.run([str(ANOMALIB_PYTHON), "-c", same, *(str(tmp_path / n / "model.ckpt") for n in
                                                               ("run", "again", "other"))],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]
    result = run_cli("anomalib", "train", "--model", "patchcore", "--data", tiny_mvtec, "--category", "bottle",
                     "--backbone-weights", tmp_path / "bad.pt", "--out", tmp_path / "run2")
    assert result.returncode == 2 and "lacks 89 of the backbone's 90 tensors" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "run2").exists()
    (tmp_path / "garbage.pt").write_bytes(bytes(range(256)) * 4)
    result = run_cli("anomalib", "train", "--model", "patchcore", "--data", tiny_mvtec, "--category", "bottle",
                     "--backbone-weights", tmp_path / "garbage.pt", "--out", tmp_path / "run3")
    assert result.returncode == 2 and "cannot be read as a state dict" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "run3").exists()
