"""What SAM training and prediction share: the embedding cache, prompts, targets, losses, decoding.

``Sam.forward`` and ``SamPredictor`` run under ``torch.no_grad()``, so the loops call the image
encoder, prompt encoder and mask decoder directly. The image encoder is frozen: each image's
embedding is computed once and cached on disk (fp16), so every epoch after the first runs only
the prompt encoder and the decoder.

Resolution choice: the ground truth is brought to the decoder's resolution the same way the image
was brought to the encoder's — ``ResizeLongestSide`` to the encoder size, zero padding at the
bottom and right, then area-averaged down to the decoder's low-resolution grid (a quarter of the
encoder size), giving soft targets in [0, 1]. The loss is computed there, which is what the
decoder predicts; evaluation upsamples predictions to the original image with
``Sam.postprocess_masks`` and compares them with the full-resolution masks.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...errors import OptionError


class EmbeddingCache:
    """Image embeddings computed once per (image file, encoder) and kept on disk in fp16."""

    def __init__(self, sam, folder: Path, identity: str):
        from segment_anything.utils.transforms import ResizeLongestSide

        self.sam = sam
        self.folder = Path(folder)
        self.identity = identity
        self.transform = ResizeLongestSide(sam.image_encoder.img_size)
        self.encoder_calls = 0
        self.memory: dict[str, torch.Tensor] = {}

    def _key(self, path: Path) -> str:
        stat = path.stat()
        text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.identity}"
        return hashlib.sha1(text.encode()).hexdigest()

    def get(self, path: Path) -> torch.Tensor:
        key = self._key(path)
        if key in self.memory:
            return self.memory[key]
        file = self.folder / f"{key}.pt"
        if file.is_file():
            emb = torch.load(file, map_location="cpu", weights_only=True)
        else:
            emb = self._encode(path).half().cpu()
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f".{file.name}.{os.getpid()}")
            torch.save(emb, partial)
            os.replace(partial, file)  # a reader (another rank, a later run) never sees half a file
        self.memory[key] = emb
        return emb

    def fill(self, paths: list[Path], rank: int = 0, world: int = 1) -> None:
        """Compute the embeddings of ``paths`` that are not cached yet, this rank's share only
        (every ``world``-th path from ``rank``), so that under ``torchrun`` each image is encoded
        and written by one process; the caller waits for all ranks before reading them."""
        for path in sorted(set(paths))[rank::world]:
            if path.is_file():
                self.get(path)

    @torch.no_grad()
    def _encode(self, path: Path) -> torch.Tensor:
        self.encoder_calls += 1
        image = read_rgb(path)
        x = torch.as_tensor(self.transform.apply_image(image)).permute(2, 0, 1)[None].float()
        device = next(self.sam.parameters()).device
        return self.sam.image_encoder(self.sam.preprocess(x.to(device)))


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        from ...errors import BrokenFileError

        raise BrokenFileError("image cannot be decoded", path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encoder_identity(model_type: str, checkpoint: str, seed: int) -> str:
    """What makes two encoders produce the same embeddings (checkpoint file, or the random seed)."""
    if checkpoint in ("none", "", None):
        return f"{model_type}|random|{seed}"
    p = Path(checkpoint)
    return f"{model_type}|{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}"


def low_res_target(mask: np.ndarray, image_size: int) -> np.ndarray:
    """Full-resolution 0/1 mask -> soft target on the decoder grid (ResizeLongestSide + pad + area)."""
    h, w = mask.shape
    scale = image_size / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    resized = cv2.resize(mask.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
    padded = np.zeros((image_size, image_size), np.float32)
    padded[:nh, :nw] = resized
    low = image_size // 4
    return cv2.resize(padded, (low, low), interpolation=cv2.INTER_AREA)


def jitter_boxes(boxes: np.ndarray, jitter: float, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """XYXY boxes with each edge moved by up to ``jitter`` x the box side, clipped to the image."""
    boxes = boxes.astype(np.float64).copy()
    if jitter > 0:
        side = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
        boxes += rng.uniform(-jitter, jitter, size=boxes.shape) * np.maximum(side, 1.0)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width - 1)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height - 1)
    x0, x1 = np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2])
    y0, y1 = np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3])
    return np.stack([x0, y0, x1, y1], axis=1)


def sample_points(masks: list[np.ndarray], boxes: np.ndarray, inside: int, outside: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """(N, P, 2) xy points and (N, P) labels (1 inside the mask, 0 outside it but inside the box)."""
    if inside + outside == 0:
        return None
    coords, labels = [], []
    for mask, (x0, y0, x1, y1) in zip(masks, boxes):
        ys, xs = np.nonzero(mask)
        pick = rng.integers(0, len(xs), size=inside)
        pts = [(xs[i], ys[i], 1) for i in pick]
        box = np.zeros_like(mask)
        box[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1] = 1
        oys, oxs = np.nonzero(box & (mask == 0))
        for _ in range(outside):
            if len(oxs):
                i = int(rng.integers(len(oxs)))
                pts.append((oxs[i], oys[i], 0))
            else:  # the mask fills its box: repeat an inside point as negative-free padding
                pts.append((xs[pick[0]] if inside else xs[0], ys[pick[0]] if inside else ys[0], 1))
        coords.append([(p[0], p[1]) for p in pts])
        labels.append([p[2] for p in pts])
    return np.asarray(coords, np.float64), np.asarray(labels, np.int64)


def mask_losses(logits: torch.Tensor, target: torch.Tensor, iou_pred: torch.Tensor, kind: str = "focal"
                ) -> dict[str, torch.Tensor]:
    """Focal (or BCE) + dice on (N, H, W) logits vs soft targets, and MSE of predicted vs true IoU."""
    from torchvision.ops import sigmoid_focal_loss

    if kind == "focal":
        mask_loss = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean")
    elif kind == "bce":
        mask_loss = F.binary_cross_entropy_with_logits(logits, target)
    else:
        raise OptionError(f"unknown mask loss '{kind}'", hint="use focal or bce")
    prob = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = 1.0 - (2 * (prob * t).sum(1) + 1.0) / (prob.sum(1) + t.sum(1) + 1.0)
    with torch.no_grad():
        pred = (logits > 0).flatten(1).float()
        hard = (t > 0.5).float()
        inter = (pred * hard).sum(1)
        true_iou = inter / (pred.sum(1) + hard.sum(1) - inter).clamp(min=1.0)
    return {"mask": mask_loss, "dice": dice.mean(), "iou": F.mse_loss(iou_pred.float(), true_iou),
            "true_iou": true_iou}


def decode(sam, embedding: torch.Tensor, boxes: np.ndarray, points, original: tuple[int, int], transform):
    """Prompt encoder + mask decoder for one image's prompts: (N, 1, h, w) low-res logits, (N, 1) IoU.

    ``boxes`` are SAM box prompts (first and last pixel, ``geometry.boxes.sam_prompts``)."""
    device = embedding.device
    box_t = torch.as_tensor(transform.apply_boxes(boxes, original), dtype=torch.float32, device=device)
    pts = None
    if points is not None:
        coords = torch.as_tensor(transform.apply_coords(points[0], original), dtype=torch.float32, device=device)
        pts = (coords, torch.as_tensor(points[1], device=device))
    sparse, dense = sam.prompt_encoder(points=pts, boxes=box_t, masks=None)
    return sam.mask_decoder(image_embeddings=embedding, image_pe=sam.prompt_encoder.get_dense_pe(),
                            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)


def load_trained(sam, path: Path | str | None):
    """Put a ``decoder.pt`` of ``train_sam`` into ``sam`` (CPU or GPU, whatever it was saved on)."""
    if not path:
        return sam
    path = Path(path)
    if not path.is_file():
        raise OptionError("trained decoder file does not exist", path, "pass RUN/decoder.pt of `sam train`")
    from ..common.files import load_weights, torch_file

    state = torch_file(path, "trained SAM decoder", weights_only=False)

    def put(_: str):
        sam.mask_decoder.load_state_dict(state["mask_decoder"])
        if "prompt_encoder" in state:
            sam.prompt_encoder.load_state_dict(state["prompt_encoder"])
        return sam

    return load_weights(path, "trained SAM decoder", put)




def upsample(sam, logits: torch.Tensor, shape: tuple[int, int], transform) -> np.ndarray:
    """Low-resolution logits -> (N, H, W) boolean masks at the image's own size."""
    size = transform.get_preprocess_shape(*shape, transform.target_length)
    return (sam.postprocess_masks(logits, size, shape)[:, 0] > 0).cpu().numpy()
