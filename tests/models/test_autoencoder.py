"""The autoencoder baseline: reconstruction error finds obvious defects; train, predict, evaluate, compare."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mvtec2coco.errors import OptionError
from mvtec2coco.models.autoencoder.config import AutoencoderRunConfig
from mvtec2coco.models.autoencoder.model import Autoencoder, AutoencoderConfig, ssim_map
from mvtec2coco.models.patchcore.config import DataConfig
from mvtec2coco.models.patchcore.run import evaluate, fit, load_run

from ..helpers import run_cli

SMALL = AutoencoderConfig(image_size=64, channels=(16, 32, 64), latent_dim=16, epochs=40, batch_size=8)


def _obvious(root: Path) -> Path:
    """MVTec-layout category 'plate': smooth shaded plates; defects are dark 12 px squares."""
    rng = np.random.default_rng(0)
    cat = root / "plate"

    def plate() -> np.ndarray:
        y, x = np.mgrid[0:64, 0:64]
        base = 140 + 40 * np.sin(x / 9.0 + rng.uniform(0, 0.3)) + rng.normal(0, 3, (64, 64))
        return np.repeat(np.clip(base, 0, 255).astype(np.uint8)[..., None], 3, axis=2)

    for i in range(48):
        (cat / "train" / "good").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(cat / "train" / "good" / f"{i:03d}.png"), plate())
    for i in range(10):
        (cat / "test" / "good").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(cat / "test" / "good" / f"{i:03d}.png"), plate())
        image, mask = plate(), np.zeros((64, 64), np.uint8)
        x, y = rng.integers(8, 44, size=2)
        image[y : y + 12, x : x + 12] = 20
        mask[y : y + 12, x : x + 12] = 255
        for folder in ("test/dark", "ground_truth/dark"):
            (cat / folder).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(cat / "test" / "dark" / f"{i:03d}.png"), image)
        cv2.imwrite(str(cat / "ground_truth" / "dark" / f"{i:03d}_mask.png"), mask)
    return root


def test_loss_falls_and_obvious_defects_are_found(tmp_path):
    root = _obvious(tmp_path / "data")
    cfg = AutoencoderRunConfig(data=DataConfig(root=str(root), category="plate"), model=SMALL, device="cpu")
    info = fit(cfg, tmp_path / "run", family="autoencoder")
    assert info["loss_last"] < info["loss_first"] / 3
    assert info["losses"][-1] <= min(info["losses"][:5])
    result = evaluate(tmp_path / "run", device="cpu")
    assert result["overall"]["image_auroc"] > 0.9
    assert result["overall"]["pixel_auroc"] > 0.9
    model, run = load_run(tmp_path / "run", "cpu")
    assert isinstance(model, Autoencoder) and run["family"] == "autoencoder"
    assert (tmp_path / "run" / "heatmaps.png").is_file()


def test_vae_and_ssim_variants_train_and_score():
    x = torch.randn(6, 3, 32, 32)
    for config in (AutoencoderConfig(image_size=32, channels=(8, 16), latent_dim=8, epochs=3, variational=True),
                   AutoencoderConfig(image_size=32, channels=(8, 16), latent_dim=8, epochs=3, score="l2+ssim")):
        model = Autoencoder(config)
        stats = model.fit([x[:3], x[3:]])
        assert len(stats["losses"]) == 3
        maps, scores = model.score(x)
        assert maps.shape == (6, 32, 32) and np.all(np.isfinite(maps)) and np.allclose(scores, maps.max(axis=(1, 2)))
        again = Autoencoder.from_state(model.state())
        assert np.allclose(again.score(x)[0], maps)


def test_ssim_is_one_for_identical_images_and_lower_for_others():
    a = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim_map(a, a), torch.ones(2, 1, 32, 32), atol=1e-4)
    assert float(ssim_map(a, torch.rand(2, 3, 32, 32)).mean()) < 0.5


def test_bad_settings_are_refused():
    with pytest.raises(OptionError, match="divisible"):
        Autoencoder(AutoencoderConfig(image_size=100, channels=(8, 16, 32)))
    with pytest.raises(OptionError, match="score"):
        Autoencoder(AutoencoderConfig(score="mae"))


AE_TINY = ("--set", "model.image_size=32", "--set", "model.channels=[8,16]", "--set", "model.latent_dim=8",
           "--set", "model.epochs=2", "--set", "model.batch_size=4")


@pytest.mark.slow
def test_cli_train_predict_evaluate_and_compare(tiny_mvtec, tmp_path):
    converted_all = tmp_path / "conv"
    assert run_cli("convert", tiny_mvtec, "--format", "all", "--out", converted_all, "--split", "0.5,0.25,0.25",
                   "--category", "bottle").returncode == 0
    run = tmp_path / "run"
    result = run_cli("autoencoder", "train", "--data", tiny_mvtec, "--category", "bottle", *AE_TINY, "--device", "cpu",
                     "--out", run)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loss" in result.stdout and (run / "autoencoder.pt").is_file()
    assert run_cli("autoencoder", "eval", run, "--device", "cpu").returncode == 0
    pred = tmp_path / "pred" / "autoencoder"
    result = run_cli("autoencoder", "predict", run, "--data", converted_all, "--split", "test", "--device", "cpu",
                     "--out", pred)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((pred / "predictions.json").read_text())
    assert data["info"]["family"] == "autoencoder" and all("score" in i for i in data["images"])
    result = run_cli("evaluate", pred, "--gt", converted_all, "--split", "test")
    assert result.returncode == 0, result.stderr[-2000:]
    result = run_cli("compare", pred, "--markdown", tmp_path / "t.md")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "autoencoder" in (tmp_path / "t.md").read_text()
