"""A conversion's COCO subset as a torchvision detection dataset that Mask R-CNN and friends train
on, good images included.

torchvision's ``CocoDetection`` wrapped by ``wrap_dataset_for_transforms_v2`` gives targets with
``boxes`` (XYXY; the COCO box ``[x, y, w, h]`` of our pixel-edge convention becomes exactly
``[x, y, x + w, y + h]``), ``labels`` and ``masks`` — but an image without annotations gets a
target without those keys, and the detection models then raise ``KeyError``. Here every target
has them: ``boxes`` of shape (0, 4), ``labels`` (0,), ``masks`` (0, H, W) for a good image.
"""

from __future__ import annotations

from pathlib import Path

from . import coco


class DetectionDataset:
    """``(image, target)`` pairs of one subset; ``transforms`` (torchvision v2) apply to both."""

    def __init__(self, out: Path | str, subset: str = "train", transforms=None):
        import contextlib
        import io

        from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2

        ann_file = coco.subset_file(out, subset)
        coco.load(ann_file)  # a typed error for a broken or foreign file, before torchvision reads it
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            base = CocoDetection(str(coco.subset_images_dir(ann_file)), str(ann_file))
        self.base = wrap_dataset_for_transforms_v2(base, target_keys={"image_id", "boxes", "labels", "masks"})
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        import torch
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as F

        image, target = self.base[index]
        height, width = F.get_size(image)
        if "boxes" not in target:  # an image without defects
            target["boxes"] = tv_tensors.BoundingBoxes(torch.zeros((0, 4)), format="XYXY", canvas_size=(height, width))
            target["labels"] = torch.zeros((0,), dtype=torch.int64)
            target["masks"] = tv_tensors.Mask(torch.zeros((0, height, width), dtype=torch.uint8))
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def collate(batch):
    """Detection models take lists of images and of targets, not stacked tensors."""
    return tuple(zip(*batch))
