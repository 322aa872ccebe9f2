"""PatchCore: coreset, metrics by hand, fit/eval/annotate end to end with a random-weight backbone."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mvtec2coco.metrics.image import auroc, best_f1_threshold  # noqa: E402
from mvtec2coco.metrics.pixel import pro_auc, pro_curve  # noqa: E402
from mvtec2coco.models.patchcore.model import greedy_coreset, nearest_distance  # noqa: E402

from ..helpers import run_cli  # noqa: E402


def test_coreset_size_and_coverage_against_brute_force():
    """Greedy k-centre covers within twice the optimal radius, found here by trying every subset."""
    from itertools import combinations

    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    points = torch.tensor(np.concatenate([c + rng.normal(size=(5, 2)) * 0.5 for c in centres]), dtype=torch.float32)
    chosen = greedy_coreset(points, 4, projection_dim=0, seed=0)
    assert len(chosen) == 4 and len(set(chosen.tolist())) == 4
    dist = torch.cdist(points, points)
    greedy_radius = float(dist[:, chosen].min(dim=1).values.max())
    optimal = min(float(dist[:, list(c)].min(dim=1).values.max()) for c in combinations(range(len(points)), 4))
    assert greedy_radius <= 2 * optimal + 1e-6
    assert {tuple(np.round(centres[np.argmin(((centres - points[i].numpy()) ** 2).sum(1))])) for i in chosen} == \
        {tuple(c) for c in centres}  # one point in every cluster
    wide = torch.tensor(rng.normal(size=(400, 64)), dtype=torch.float32)
    projected = greedy_coreset(wide, 40, projection_dim=16, seed=0)
    assert len(set(projected.tolist())) == 40
    assert len(greedy_coreset(points, 5000)) == len(points)


def test_fast_coreset_selects_the_same_points_as_the_plain_one():
    """The matrix-vector update picks exactly the points the plain full-difference update picks,
    projected or not, on features shaped like a backbone's (many patches, a few hundred dims)."""
    from mvtec2coco.models.patchcore.model import greedy_coreset_reference

    generator = torch.Generator().manual_seed(1)
    features = torch.randn(6000, 192, generator=generator).abs()  # post-ReLU-like, as PatchCore's features
    for dim in (0, 64):
        for seed in (0, 5):
            fast = greedy_coreset(features, 300, projection_dim=dim, seed=seed)
            assert torch.equal(fast, greedy_coreset_reference(features, 300, projection_dim=dim, seed=seed))


def test_nearest_distance_in_chunks_equals_brute_force():
    from mvtec2coco.models.patchcore.model import nearest

    q, bank = torch.randn(300, 5), torch.randn(1000, 5)
    assert torch.allclose(nearest_distance(q, bank, chunk=7), torch.cdist(q, bank).min(dim=1).values, atol=1e-5)
    distance, index = nearest(q, bank, chunk=7)
    assert torch.equal(index, torch.cdist(q, bank).argmin(dim=1))
    assert torch.allclose(distance, (q - bank[index]).norm(dim=1), atol=1e-5)


def test_a_backbone_without_weights_is_the_same_network_for_the_same_seed():
    """``weights: none`` (tests, benchmarks, CI) gives the same random backbone for one seed, so a
    run is repeatable and two scorings of one image set compare like with like."""
    from mvtec2coco.models.patchcore.model import FeatureExtractor, PatchCoreConfig

    def weights(seed: int, elsewhere: int) -> list[torch.Tensor]:
        torch.manual_seed(elsewhere)  # the global generator, which must not matter
        return list(FeatureExtractor(PatchCoreConfig(backbone="resnet18", weights="none", seed=seed)).state_dict().values())

    assert all(torch.equal(a, b) for a, b in zip(weights(0, 1), weights(0, 2)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(0, 1), weights(1, 1)))


def test_concat_aggregation_keeps_both_layers_channels_as_anomalib_does():
    """``aggregate: concat`` is anomalib's feature: layer 2 and the upsampled layer 3, each averaged
    over its 3x3 neighbourhood, side by side (128 + 256 channels of a ResNet-18); ``pool`` reduces
    them to ``dim``; anything else is refused."""
    import torch.nn.functional as F

    from mvtec2coco.errors import OptionError
    from mvtec2coco.models.patchcore.model import FeatureExtractor, PatchCoreConfig

    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    net = FeatureExtractor(PatchCoreConfig(backbone="resnet18", weights="none", aggregate="concat"))
    f = net(x)
    with torch.no_grad():
        f2 = net.layer2(net.stem(x))
        f3 = F.interpolate(F.avg_pool2d(net.layer3(f2), 3, 1, 1), size=f2.shape[-2:], mode="bilinear",
                           align_corners=False)
        want = torch.cat((F.avg_pool2d(f2, 3, 1, 1), f3), dim=1)
    assert f.shape == (2, 384, 8, 8) and torch.allclose(f, want)
    pooled = FeatureExtractor(PatchCoreConfig(backbone="resnet18", weights="none", dim=100))(x)
    assert pooled.shape == (2, 100, 8, 8)
    with pytest.raises(OptionError, match="model.aggregate"):
        PatchCoreConfig(aggregate="sum").check()


def test_image_score_is_the_papers_reweighted_maximum():
    """Eq. 7 of the PatchCore paper written out per image: s* the largest patch distance, m* its
    nearest bank point, N the b nearest bank points of m* (m* first), weight 1 - exp(|p - m*|) /
    sum over N of exp(|p - m|). A rare nearest pattern keeps more of the score than a dense one."""
    from mvtec2coco.models.patchcore.model import PatchCoreConfig, nearest, reweighted_scores

    generator = torch.Generator().manual_seed(2)
    bank = torch.randn(200, 8, generator=generator)
    features = torch.randn(3, 50, 8, generator=generator) * 1.5
    dist, where = nearest(features.reshape(-1, 8), bank)
    dist, where = dist.reshape(3, 50), where.reshape(3, 50)
    got = reweighted_scores(features, dist, where, bank, neighbours=9)
    for i in range(3):
        p = int(np.argmax(dist[i].numpy()))
        patch = features[i, p].double()
        centre = bank[int(where[i, p])].double()
        order = np.argsort([float((centre - m.double()).norm()) for m in bank], kind="stable")[:9]
        ds = np.array([float((patch - bank[j].double()).norm()) for j in order])
        expected = (1 - np.exp(ds[0]) / np.exp(ds).sum()) * float(dist[i, p])
        assert float(got[i]) == pytest.approx(expected, rel=1e-4)
    lone, crowd = torch.tensor([[10.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [-0.1, 0.0]])
    bank2 = torch.cat([lone, crowd])
    near_lone, near_crowd = torch.tensor([[[12.0, 0.0]]]), torch.tensor([[[-2.1, 0.0]]])
    scores = [float(reweighted_scores(f, *[t.reshape(1, 1) for t in nearest(f[0], bank2)], bank2, 3)[0])
              for f in (near_lone, near_crowd)]
    assert scores[0] > scores[1]  # both 2 from their nearest point: the rare one scores higher
    with pytest.raises(Exception, match="image_score"):
        PatchCoreConfig(image_score="mean").check()


def test_pro_by_hand():
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, 0, :2] = 1  # region A: 2 px
    masks[0, 3, 3] = 1  # region B: 1 px
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = 0.9  # half of A
    maps[0, 3, 3] = 0.8  # all of B
    maps[0, 2, 2] = 0.7  # one false positive among 13 normal pixels
    fpr, pro = pro_curve(maps, masks)
    at = {round(f, 4): p for f, p in zip(fpr, pro)}
    assert at[0.0] == pytest.approx(0.75)  # thresholds between 0.7 and 0.9: (1/2 + 1) / 2
    assert at[round(1 / 13, 4)] == pytest.approx(0.75)
    perfect = pro_auc(masks.astype(float), masks)
    assert perfect == pytest.approx(1.0)
    assert pro_auc(maps, masks) < 1.0
    assert pro_auc(maps, np.zeros_like(masks)) is None


def test_auroc_and_f1_threshold_by_hand():
    scores = np.array([0.1, 0.3, 0.35, 0.8])
    truth = np.array([False, False, True, True])
    assert auroc(scores, truth) == pytest.approx(1.0)
    t, f1 = best_f1_threshold(scores, truth)
    assert t == pytest.approx(0.35) and f1 == pytest.approx(1.0)


PATCHCORE_TINY = ("--set", "model.backbone=resnet18", "--set", "model.weights=none", "--set", "model.image_size=64",
                  "--set", "model.dim=64", "--set", "model.coreset_ratio=0.25")


@pytest.fixture(scope="module")
def fitted(tiny_mvtec, tmp_path_factory):
    run = tmp_path_factory.mktemp("pc") / "run"
    result = run_cli("patchcore", "train", "--data", tiny_mvtec, "--category", "bottle", "--out", run,
                     *PATCHCORE_TINY, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    return run


@pytest.mark.slow
def test_fit_saves_a_self_contained_run(fitted):
    info = json.loads((fitted / "run.json").read_text())
    assert info["train_images"] == 8 and info["bank"] == round(info["patches"] * 0.25)
    state = torch.load(fitted / "patchcore.pt", map_location="cpu", weights_only=False)
    assert state["bank"].shape == (info["bank"], 64) and "extractor" in state


@pytest.mark.slow
def test_eval_reports_per_type_and_draws_heatmaps(fitted):
    result = run_cli("patchcore", "eval", fitted, "--device", "auto")
    assert result.returncode == 0, result.stderr[-2000:]
    ev = json.loads((fitted / "eval.json").read_text())
    assert set(ev["per_type"]) == {"broken_large", "broken_small", "contamination"}
    for m in [ev["overall"], *ev["per_type"].values()]:
        assert 0.0 <= m["image_auroc"] <= 1.0 and 0.0 <= m["pixel_auroc"] <= 1.0 and 0.0 <= m["pro"] <= 1.0
    assert "F1-optimal on the test images" in ev["thresholds"]["chosen_by"]
    assert (fitted / "heatmaps.png").stat().st_size > 2000


@pytest.mark.slow
def test_annotate_writes_drafts_that_load_and_verify(fitted, tiny_mvtec, tmp_path):
    import contextlib
    import io

    from pycocotools.coco import COCO

    run_cli("patchcore", "eval", fitted, check=True)
    images = tiny_mvtec / "bottle" / "test"
    for fmt in ("coco", "yolo-seg"):
        out = tmp_path / fmt
        result = run_cli("patchcore", "annotate", fitted, images, "--out", out, "--format", fmt, "--threshold", "0",
                         "--min-area", "1")
        assert result.returncode == 0, result.stderr[-2000:]
        report = json.loads((out / fmt / "report.json").read_text())
        assert report["draft"] is True and report["instances_total"] >= 1
        assert run_cli("verify", out / fmt).returncode == 0
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / "coco" / "coco" / "annotations" / "instances_train.json"))
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns and all("score" in a and a["score"] >= 0 for a in anns)
    assert len(coco.getImgIds()) == 12


@pytest.mark.slow
def test_missing_weights_message(tiny_mvtec, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    result = run_cli("patchcore", "train", "--data", tiny_mvtec, "--category", "bottle", "--out", tmp_path / "r",
                     "--set", "model.backbone=resnet18")
    assert result.returncode == 2
    assert "resnet18-f37072fd.pth" in result.stderr and str(tmp_path / "th") in result.stderr


@pytest.mark.slow
def test_annotate_refined_with_sam(fitted, tiny_mvtec, tmp_path):
    pytest.importorskip("segment_anything")
    from mvtec2coco.models.sam.network import build_sam

    checkpoint = tmp_path / "sam_tiny.pth"
    torch.save(build_sam("tiny", None).state_dict(), checkpoint)
    out = tmp_path / "refined"
    result = run_cli("patchcore", "annotate", fitted, tiny_mvtec / "bottle" / "test" / "broken_large", "--out", out,
                     "--format", "coco", "--threshold", "0", "--min-area", "1", "--refine-with-sam", checkpoint,
                     "--sam-model-type", "tiny")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "coco" / "report.json").read_text())
    assert report["draft"] is True
    assert run_cli("verify", out / "coco").returncode == 0  # SAM's masks went through the same geometry


@pytest.mark.slow
def test_predict_is_keyed_by_the_ground_truth_and_loads_for_cocoeval(fitted, tiny_mvtec, tmp_path):
    import contextlib
    import io

    from pycocotools.coco import COCO

    conversion = tmp_path / "conv"
    run_cli("convert", tiny_mvtec, "--format", "coco", "--out", conversion, check=True)
    run_cli("patchcore", "eval", fitted, check=True)  # chooses the pixel threshold
    out = tmp_path / "pred"
    result = run_cli("patchcore", "predict", fitted, "--data", conversion, "--split", "test", "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    gt_file = conversion / "annotations" / "instances_test.json"
    gt = json.loads(gt_file.read_text())
    pred = json.loads((out / "predictions.json").read_text())
    assert [{k: i[k] for k in ("id", "file_name", "width", "height", "source_file")} for i in pred["images"]] == gt["images"]
    assert all(i["score"] >= 0 for i in pred["images"]) and pred["categories"] == gt["categories"]
    assert pred["info"]["pixel_threshold"] is not None and pred["annotations"]
    with contextlib.redirect_stdout(io.StringIO()):
        dt = COCO(str(gt_file)).loadRes(str(out / "results.json"))
    for a in pred["annotations"]:
        ys, xs = np.nonzero(dt.annToMask(dt.anns[a["id"]]))
        assert a["area"] == len(xs) and a["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
