"""A conversion trains torchvision detection models as it is, good images included."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from mvtec2coco.formats.torchvision import DetectionDataset, collate  # noqa: E402

from ..helpers import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def conversion(tiny_mvtec, tmp_path_factory):
    out = tmp_path_factory.mktemp("tv") / "coco"
    run_cli("convert", tiny_mvtec, "--format", "coco", "--out", out, check=True)
    return out


def test_every_target_has_boxes_labels_and_masks(conversion):
    from torchvision.transforms import v2

    data = DetectionDataset(conversion, "train", transforms=v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]))
    gt = json.loads((conversion / "annotations" / "instances_train.json").read_text())
    by_image = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    seen_good = seen_defect = False
    for k, img in enumerate(gt["images"]):
        image, target = data[k]
        anns = by_image.get(img["id"], [])
        assert target["boxes"].shape == (len(anns), 4) and target["labels"].shape == (len(anns),)
        assert target["masks"].shape == (len(anns), img["height"], img["width"])
        for a, box, mask in zip(anns, target["boxes"].tolist(), target["masks"]):
            x, y, w, h = a["bbox"]
            assert box == [x, y, x + w, y + h]  # the pixel-edge box, exactly
            ys, xs = np.nonzero(mask.numpy())
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == box
        seen_good |= not anns
        seen_defect |= bool(anns)
    assert seen_good and seen_defect


@pytest.mark.slow
def test_mask_rcnn_trains_on_a_batch_with_a_good_image(conversion):
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    from torchvision.transforms import v2

    data = DetectionDataset(conversion, "train", transforms=v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]))
    gt = json.loads((conversion / "annotations" / "instances_train.json").read_text())
    defective = {a["image_id"] for a in gt["annotations"]}
    good = next(k for k, img in enumerate(gt["images"]) if img["id"] not in defective)
    defect = next(k for k, img in enumerate(gt["images"]) if img["id"] in defective)
    images, targets = collate([data[good], data[defect]])
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=len(gt["categories"]) + 1,
                                  min_size=96, max_size=96)
    model.train()
    losses = model(list(images), list(targets))
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total) and {"loss_classifier", "loss_box_reg", "loss_mask"} <= set(losses)
