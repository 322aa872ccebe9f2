"""Segment Anything fine-tuning settings: every hyperparameter and its default, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..common.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, UNIT


@dataclass(frozen=True)
class SamConfig:
    LIMITS: ClassVar[dict] = {"epochs": AT_LEAST_ONE, "max_steps": NON_NEGATIVE, "images_per_step": AT_LEAST_ONE,
                              "max_prompts": AT_LEAST_ONE, "lr": POSITIVE, "weight_decay": NON_NEGATIVE,
                              "warmup_steps": NON_NEGATIVE, "box_jitter": UNIT, "points_inside": NON_NEGATIVE,
                              "points_outside": NON_NEGATIVE, "focal_weight": NON_NEGATIVE, "dice_weight": NON_NEGATIVE,
                              "iou_weight": NON_NEGATIVE, "seed": NON_NEGATIVE}

    data: str = ""  # a conversion with COCO ground truth (OUT or OUT/coco): its train, val and test subsets
    model_type: str = "vit_b"  # vit_b | vit_l | vit_h | tiny (tests, CPU smoke runs)
    checkpoint: str = "none"  # a local SAM checkpoint (sam_vit_b_01ec64.pth), or none: random initialisation
    epochs: int = 20  # decoder-only epochs are cheap once the embeddings are cached
    max_steps: int = 0  # 0: no limit; a bounded number of optimizer steps otherwise
    images_per_step: int = 4  # images whose prompts are summed into one optimizer step
    max_prompts: int = 16  # instances per image per step (defect images rarely have more)
    lr: float = 1e-4  # AdamW; the decoder starts from a good checkpoint, keep it gentle
    weight_decay: float = 1e-4
    warmup_steps: int = 20  # linear warm-up (LinearLR), then cosine decay to zero (CosineAnnealingLR)
    train_prompt_encoder: bool = False  # the checkpoint's box embedding already works; unfreeze for odd prompts
    box_jitter: float = 0.1  # each box edge moves by up to this fraction of the box side, as a detector's would
    points_inside: int = 0  # optional point prompts sampled inside the mask ...
    points_outside: int = 0  # ... and outside it, within the box
    mask_loss: str = "focal"  # focal | bce; plus dice, and MSE on the predicted IoU
    focal_weight: float = 20.0  # SAM's 20:1 focal:dice
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision, CUDA only
