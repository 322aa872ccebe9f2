"""Classifier experiments: models, imbalance remedies, metrics, a tiny run, compare, DDP on CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from mvtec2coco.errors import WeightsError  # noqa: E402
from mvtec2coco.metrics.image import auroc  # noqa: E402
from mvtec2coco.models.classifier.config import load_config  # noqa: E402
from mvtec2coco.models.classifier.longtail import (  # noqa: E402
    FocalLoss,
    LogitAdjustedLoss,
    ProjectionHead,
    adjust_logits,
    balanced_contrastive,
    class_balanced_sampler,
    class_balanced_weights,
    log_prior,
)
from mvtec2coco.models.classifier.network import ARCHS, ModelConfig, build_model, parameter_groups  # noqa: E402
from mvtec2coco.models.common.metrics import classification_metrics  # noqa: E402
from mvtec2coco.models.common.weights import WeightsNotFoundError, load_state_dict  # noqa: E402

from ..helpers import run_cli, stop_after  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs" / "classifier").glob("0*.yaml"))  # experiments; default.yaml is tested apart


@pytest.mark.parametrize("arch", ARCHS)
def test_every_model_builds_and_runs(arch):
    model = build_model(ModelConfig(arch=arch, weights="none", dropout=0.1, freeze_stages=2), num_classes=4)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 4)
    frozen = [p for s in model.stages[:2] for p in s.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)
    groups = parameter_groups(model, lr=1e-4, head_lr=1e-2)
    assert groups[0]["name"] == "head" and groups[0]["lr"] == 1e-2 and groups[1]["lr"] == 1e-4


def test_missing_imagenet_weights_name_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as err:
        load_state_dict("imagenet", "resnet18")
    text = str(err.value)
    assert "resnet18-f37072fd.pth" in text and str(tmp_path / "hub" / "checkpoints") in text
    assert "download" in text
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_state_dict(str(tmp_path / "nope.pth"), "resnet18")


def test_local_weight_file_is_loaded(tmp_path, monkeypatch):
    reference = build_model(ModelConfig(arch="resnet18"), 3)
    torch.save(reference.backbone.state_dict(), tmp_path / "w.pth")
    model = build_model(ModelConfig(arch="resnet18", weights=str(tmp_path / "w.pth")), 3)
    for a, b in zip(model.backbone.state_dict().values(), reference.backbone.state_dict().values()):
        assert torch.equal(a, b)
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    shutil.copy(tmp_path / "w.pth", folder / "resnet18-f37072fd.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="hash check"):  # torchvision's name, another file: never used
        load_state_dict("imagenet", "resnet18")
    assert (folder / "resnet18-f37072fd.pth").is_file()  # nor deleted: `weights verify` replaces it


def test_class_balanced_sampler_draws_classes_evenly():
    labels = [0] * 200 + [1] * 20 + [2] * 5
    drawn = np.bincount([labels[i] for i in class_balanced_sampler(labels, 3, seed=0)] * 1, minlength=3)
    draws = []
    for seed in range(20):
        draws += [labels[i] for i in class_balanced_sampler(labels, 3, seed=seed)]
    counts = np.bincount(draws, minlength=3) / len(draws)
    assert np.allclose(counts, 1 / 3, atol=0.03)
    assert drawn.sum() == len(labels)


def test_class_balanced_weights_follow_the_formula():
    counts = np.array([200, 20, 5])
    beta = 0.99
    w = class_balanced_weights(counts, beta).numpy()
    expected = (1 - beta) / (1 - beta ** counts)
    expected = expected / expected.sum() * 3
    assert np.allclose(w, expected, rtol=1e-6)
    assert w[2] > w[1] > w[0] and w.sum() == pytest.approx(3.0)


def test_logit_adjustment_shifts_by_tau_log_prior():
    counts = np.array([60, 30, 10])
    logits = torch.randn(4, 3)
    shifted = adjust_logits(logits, log_prior(counts), tau=1.5)
    assert torch.allclose(shifted - logits, 1.5 * torch.log(torch.tensor([0.6, 0.3, 0.1])).expand(4, 3), atol=1e-6)
    target = torch.tensor([0, 1, 2, 2])
    la = LogitAdjustedLoss(counts, tau=1.5)(logits, target)
    manual = torch.nn.functional.cross_entropy(shifted, target)
    assert torch.isclose(la, manual)


def test_focal_loss_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([0, 0])
    p = torch.softmax(logits, 1)[:, 0]
    expected = (-((1 - p) ** 2) * torch.log(p)).mean()
    assert torch.isclose(FocalLoss(2.0)(logits, target), expected)
    assert torch.isclose(FocalLoss(0.0)(logits, target), torch.nn.functional.cross_entropy(logits, target))


def test_bcl_loss_is_finite_and_decreases_on_a_toy_batch():
    torch.manual_seed(0)
    features = torch.randn(16, 8)
    labels = torch.tensor([0] * 10 + [1] * 4 + [2] * 2)
    encoder = torch.nn.Linear(8, 8)
    head = ProjectionHead(8, 4)
    prototypes = torch.nn.Parameter(torch.randn(3, 8))
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters(), prototypes], lr=0.05)
    losses = []
    for _ in range(40):
        loss = balanced_contrastive(head(encoder(features)), labels, head(prototypes), temperature=0.1)
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]


def test_bcl_class_averaging_by_hand():
    """Two anchors of class 0 and one of class 1 at right angles: the loss has a closed form.

    Anchor z0: candidates z1 and p0 (class 0, similarity 1, divided by 3 - 1 = 2 since z0 is not
    counted), z2 and p1 (class 1, similarity 0, divided by 2). After the max shift the denominator
    is 1/2 + 1/2 + e^-1/2 + e^-1/2 = 1 + e^-1 and both positives have log-probability
    -log(1 + e^-1). Anchor z2: z0, z1, p0 divided by 3, p1 (its positive) by 2 - 1 = 1: the same.
    """
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = balanced_contrastive(z, torch.tensor([0, 0, 1]), protos, temperature=1.0)
    assert float(loss) == pytest.approx(np.log(1 + np.exp(-1)), rel=1e-6)
    unbalanced = balanced_contrastive(z, torch.tensor([0, 0, 0]), protos, temperature=1.0)
    assert float(unbalanced) != pytest.approx(float(loss))


def test_metrics_by_hand():
    y = np.array([0, 0, 0, 0, 1, 2])
    probs = np.array([[.9, .05, .05], [.8, .1, .1], [.2, .7, .1], [.6, .2, .2], [.1, .8, .1], [.3, .6, .1]])
    m = classification_metrics(y, probs, ["good", "a", "b"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 + 0) / 3)
    assert m["confusion"] == [[3, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert m["per_class"]["a"]["precision"] == pytest.approx(1 / 3)
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auroc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)


def test_every_config_loads_and_overrides_apply():
    assert len(CONFIGS) >= 7
    for path in CONFIGS:
        cfg = load_config(path, ["train.epochs=2", "optim.lr=0.5"])
        assert cfg.train.epochs == 2 and cfg.optim.lr == 0.5
        assert cfg.name == path.stem, path  # each config names its run after its file
    first = load_config(CONFIGS[0])
    assert (first.model.arch, first.train.batch_size, first.optim.lr, first.train.epochs) == ("resnet18", 32, 1e-3, 30)
    with pytest.raises(Exception, match="unknown setting"):
        load_config(CONFIGS[0], ["optim.lrr=1"])


def _tiny_overrides(root: Path) -> list[str]:
    return [f"data.root={root}", "model.weights=none", "data.image_size=48", "train.batch_size=8",
            "train.device=cpu", "train.epochs=4"]


@pytest.fixture(scope="module")
def two_runs(tiny_mvtec, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    runs = []
    for config, extra in ((CONFIGS[0], []), (CONFIGS[5], ["imbalance.sampler=class_balanced"])):
        run = base / config.stem
        result = run_cli("classifier", "train", "--config", config, "--out", run,
                         *[a for o in _tiny_overrides(tiny_mvtec) + extra for a in ("--set", o)])
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(run)
    return runs


@pytest.mark.slow
def test_tiny_run_trains_and_writes_everything(two_runs):
    run = two_runs[0]
    for name in ("best.pt", "last.pt", "metrics.jsonl", "summary.json", "config.yaml", "confusion_val.png",
                 "confusion_test.png"):
        assert (run / name).is_file(), name
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(curve) == 4
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]
    assert curve[1]["cache_misses"] == curve[0]["cache_misses"] and curve[1]["cache_hits"] > curve[0]["cache_hits"]
    assert all(c["data_fraction"] < 0.1 for c in curve[1:])
    summary = json.loads((run / "summary.json").read_text())
    assert {"val", "test", "best_epoch"} <= set(summary)
    assert summary["classes"][0] == "good" and len(summary["classes"]) == 6
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    assert state["classes"] == summary["classes"]


@pytest.mark.slow
def test_eval_and_compare(two_runs, tmp_path):
    result = run_cli("classifier", "eval", two_runs[0], "--device", "auto")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "balanced accuracy" in result.stdout and (two_runs[0] / "eval.json").is_file()
    md, png = tmp_path / "c.md", tmp_path / "c.png"
    result = run_cli("classifier", "compare", *two_runs, "--markdown", md, "--plot", png)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = md.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("| run | model | batch | lr | epochs | optimizer | method")
    assert sum("(best)" in line for line in lines) == 1
    assert "class_balanced sampler" in md.read_text() and "balanced_softmax" in md.read_text()
    assert png.stat().st_size > 5000


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(tiny_mvtec, tmp_path):
    run = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", "29611",
           "-m", "mvtec2coco", "classifier", "train", "--config", str(CONFIGS[0]), "--out", str(run)]
    for o in _tiny_overrides(tiny_mvtec)[:-1] + ["train.epochs=2"]:
        cmd += ["--set", o]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("classifier runs") == 1  # one process reports
    summary = json.loads((run / "summary.json").read_text())
    val_support = sum(c["support"] for c in summary["val"]["per_class"].values())
    single = load_config(CONFIGS[0], [f"data.root={tiny_mvtec}"])
    from mvtec2coco.models.classifier.data import make_splits

    assert val_support == len(make_splits(single.data).subsets["val"])  # gathered from both ranks
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_sweep_trains_each_config_then_compares(tiny_mvtec, tmp_path):
    md = tmp_path / "sweep.md"
    overrides = [a for o in _tiny_overrides(tiny_mvtec)[:-1] + ["train.epochs=1", f"out={tmp_path / 'runs'}"]
                 for a in ("--set", o)]
    result = run_cli("classifier", "sweep", CONFIGS[0], CONFIGS[3], *overrides, "--markdown", md)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name for p in (tmp_path / "runs").iterdir()} == {CONFIGS[0].stem, CONFIGS[3].stem}
    assert len(md.read_text().splitlines()) == 4


@pytest.mark.slow
def test_resume_reaches_the_same_weights(tiny_mvtec, tmp_path, monkeypatch):
    """A run stopped after its second epoch and resumed ends with the weights of an unstopped run:
    model, optimizer, scheduler, epoch and random states all come back."""
    from mvtec2coco.models.classifier import train as cls_train
    from mvtec2coco.models.common import distributed

    sets = _tiny_overrides(tiny_mvtec)[:-1] + ["train.epochs=4", "optim.scheduler=cosine", "optim.warmup_epochs=1",
                                               "augment.color_jitter=0.2", "model.dropout=0.2"]
    cfg = load_config(CONFIGS[0], sets)
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    cls_train.main(cfg, whole, torch.device("cpu"), distributed.Dist(), progress=False)
    real = cls_train.train_one_epoch
    monkeypatch.setattr(cls_train, "train_one_epoch", stop_after(2, real))
    with pytest.raises(KeyboardInterrupt):
        cls_train.main(cfg, stopped, torch.device("cpu"), distributed.Dist(), progress=False)
    monkeypatch.setattr(cls_train, "train_one_epoch", real)
    assert torch.load(stopped / "last.pt", weights_only=False)["epoch"] == 2
    result = run_cli("classifier", "train", "--resume", stopped)
    assert result.returncode == 0, result.stderr[-3000:]
    a = torch.load(whole / "last.pt", weights_only=False)
    b = torch.load(stopped / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 4
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["train_loss"] for r in a["records"]] == [r["train_loss"] for r in b["records"]]
    assert [r["lr"] for r in a["records"]] == [r["lr"] for r in b["records"]]


@pytest.mark.slow
def test_resume_refuses_new_settings_and_a_new_run_refuses_an_old_folder(two_runs):
    result = run_cli("classifier", "train", "--resume", two_runs[0], "--set", "train.epochs=9")
    assert result.returncode == 2 and "--set cannot be given" in result.stderr
    result = run_cli("classifier", "train", "--config", CONFIGS[0], "--out", two_runs[0])
    assert result.returncode == 2 and "already holds files" in result.stderr and "--resume" in result.stderr


@pytest.mark.slow
def test_predict_is_keyed_by_the_ground_truth(two_runs, tiny_mvtec, tmp_path):
    conversion = tmp_path / "conv"
    run_cli("convert", tiny_mvtec, "--format", "coco", "--out", conversion, check=True)
    out = tmp_path / "pred"
    result = run_cli("classifier", "predict", two_runs[0], "--data", conversion, "--split", "test", "--out", out,
                     "--device", "auto")
    assert result.returncode == 0, result.stderr[-2000:]
    gt = json.loads((conversion / "annotations" / "instances_test.json").read_text())
    pred = json.loads((out / "predictions.json").read_text())
    assert [{k: i[k] for k in ("id", "file_name", "width", "height", "source_file")} for i in pred["images"]] == gt["images"]
    classes = pred["info"]["classes"]
    for image in pred["images"]:
        probs = image["probabilities"]
        assert list(probs) == classes and abs(sum(probs.values()) - 1) < 1e-4
        assert image["score"] == pytest.approx(1 - probs["good"], abs=1e-5)
        assert image["label"] == max(probs, key=probs.get)
    assert pred["annotations"] == [] and json.loads((out / "results.json").read_text()) == []  # image level only
