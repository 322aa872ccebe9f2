"""Segment Anything models built from the ``segment-anything`` package's own modules.

``vit_b``, ``vit_l`` and ``vit_h`` match the official checkpoints; ``tiny`` (about a quarter of a
million parameters, 256 px input) uses the same classes for tests and CPU smoke runs. Checkpoints
come from a local file: nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from ...errors import Mvtec2CocoError, OptionError

CHECKPOINT_BASE = "https://dl.fbaipublicfiles.com/segment_anything"


class SamCheckpointError(Mvtec2CocoError):
    """A SAM checkpoint the command asks for is not on this machine."""


@dataclass(frozen=True)
class SamSpec:
    encoder_dim: int
    encoder_depth: int
    encoder_heads: int
    global_attn: tuple[int, ...]
    image_size: int = 1024
    prompt_dim: int = 256
    decoder_mlp: int = 2048
    decoder_heads: int = 8
    decoder_depth: int = 2
    iou_hidden: int = 256
    mask_in_chans: int = 16
    window: int = 14
    official_file: str | None = None


SPECS = {
    "vit_b": SamSpec(768, 12, 12, (2, 5, 8, 11), official_file="sam_vit_b_01ec64.pth"),
    "vit_l": SamSpec(1024, 24, 16, (5, 11, 17, 23), official_file="sam_vit_l_0b3195.pth"),
    "vit_h": SamSpec(1280, 32, 16, (7, 15, 23, 31), official_file="sam_vit_h_4b8939.pth"),
    "tiny": SamSpec(64, 2, 2, (1,), image_size=256, prompt_dim=32, decoder_mlp=64, decoder_heads=2, decoder_depth=1,
                    iou_hidden=32, mask_in_chans=4, window=4),
}
MODEL_TYPES = tuple(SPECS)


def checkpoint_hint(model_type: str) -> str:
    spec = SPECS[model_type]
    if spec.official_file is None:
        return "the tiny model has no official checkpoint: --set checkpoint=none for random initialisation"
    return (f"download {CHECKPOINT_BASE}/{spec.official_file} on a machine with internet access, copy it here "
            f"(e.g. ~/.cache/mvtec2coco/sam/{spec.official_file}) and pass it with --set checkpoint=PATH "
            "(training) or as MODEL (eval, predict); or --set checkpoint=official to fetch it on first use; "
            f"official files: " + ", ".join(f"{k}: {s.official_file}" for k, s in SPECS.items() if s.official_file))


def checkpoint_path(model_type: str, checkpoint: str) -> Path:
    """A local checkpoint (never downloaded), or ``official`` / a registry name (``sam_vit_b``):
    fetched on first use and verified (``common.fetch``)."""
    from ..common.fetch import fetch_if_named

    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path
    fetched = fetch_if_named(f"sam_{model_type}" if checkpoint == "official" else checkpoint)
    if fetched is None:
        raise SamCheckpointError(f"SAM checkpoint for {model_type} not found", path, checkpoint_hint(model_type))
    return fetched


def build_sam(model_type: str, checkpoint: Path | str | None, seed: int = 0):
    """A ``segment_anything.modeling.Sam``; ``checkpoint`` None or ``"none"`` means random weights,
    drawn from ``seed`` (the same seed gives the same encoder in training, eval and predict) without
    touching the global random state."""
    if model_type not in SPECS:
        raise OptionError(f"unknown SAM model type '{model_type}'", hint=f"use one of {', '.join(MODEL_TYPES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam = _construct(SPECS[model_type])
    if checkpoint not in (None, "none", ""):
        path = checkpoint_path(model_type, str(checkpoint))
        from ..common.files import torch_file

        state = torch_file(path, f"SAM checkpoint for {model_type}")
        try:
            sam.load_state_dict(state)
        except RuntimeError as exc:
            raise SamCheckpointError(f"checkpoint does not fit model type {model_type}", path,
                                     "pass the model type the file was made for") from exc
    return sam.eval()


def _construct(s: SamSpec):
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = s.image_size // 16
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=s.encoder_depth, embed_dim=s.encoder_dim, img_size=s.image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=s.encoder_heads, patch_size=16,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=s.global_attn, window_size=s.window,
            out_chans=s.prompt_dim),
        prompt_encoder=PromptEncoder(embed_dim=s.prompt_dim, image_embedding_size=(grid, grid),
                                     input_image_size=(s.image_size, s.image_size), mask_in_chans=s.mask_in_chans),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=s.decoder_depth, embedding_dim=s.prompt_dim, mlp_dim=s.decoder_mlp,
                                          num_heads=s.decoder_heads),
            transformer_dim=s.prompt_dim, iou_head_depth=3, iou_head_hidden_dim=s.iou_hidden),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
