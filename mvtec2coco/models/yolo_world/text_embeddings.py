"""CLIP text embeddings for YOLO-World class prompts, without the network.

ultralytics computes YOLO-World's text features with CLIP ViT-B/32, which it downloads at run time
(impossible offline). Here the same architecture is built with ``open_clip`` and its weights come
from a local file: OpenAI's ``ViT-B-32.pt`` (TorchScript) or an open_clip checkpoint of ViT-B-32.
Each class gets the L2-normalised mean of its prompt templates' normalised features (CLIP's prompt
ensembling). The table is saved in the format ultralytics' ``WorldTrainer`` caches
(``{text: tensor(512)}`` via ``torch.save``), and ``offline_text_features`` makes every
``WorldModel.get_text_pe`` call (training, validation, ``set_classes``) read it instead of CLIP.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from ...errors import Mvtec2CocoError, OptionError

EMBED_DIM = 512
DEFAULT_TEMPLATES = ("a photo of a {} on a {category}", "a close-up photo of a {}", "an industrial image of a {}")
# Words for the defect types of MVTec AD and relatives; anything else: underscores become spaces.
KNOWN_WORDS = {
    "broken_large": "large break", "broken_small": "small break", "contamination": "contamination",
    "bent_wire": "bent wire", "cable_swap": "swapped cable", "combined": "combined defects",
    "cut_inner_insulation": "cut inner insulation", "cut_outer_insulation": "cut outer insulation",
    "missing_cable": "missing cable", "missing_wire": "missing wire", "poke_insulation": "poked insulation",
    "faulty_imprint": "faulty imprint", "metal_contamination": "metal contamination", "glue_strip": "glue strip",
    "gray_stroke": "gray stroke", "pill_type": "wrong pill type", "manipulated_front": "manipulated front",
    "scratch_head": "scratched head", "scratch_neck": "scratched neck", "thread_side": "damaged thread side",
    "thread_top": "damaged thread top", "bent_lead": "bent lead", "cut_lead": "cut lead",
    "damaged_case": "damaged case", "misplaced": "misplaced part", "broken_teeth": "broken teeth",
    "fabric_border": "fabric border defect", "fabric_interior": "fabric interior defect",
    "split_teeth": "split teeth", "squeezed_teeth": "squeezed teeth", "logical_anomalies": "logical anomaly",
    "structural_anomalies": "structural anomaly", "defect": "defect", "anomaly": "anomaly", "bad": "defect",
}


class ClipWeightsError(Mvtec2CocoError):
    """The CLIP text encoder's weight file is not on this machine."""


def class_words(name: str, overrides: dict[str, str] | None = None) -> str:
    """Words a text encoder understands for a class name (``broken_large`` -> ``large break``)."""
    overrides = overrides or {}
    if name in overrides:
        return overrides[name]
    base = name.split("/")[-1]
    return KNOWN_WORDS.get(base, re.sub(r"[_\-]+", " ", base).strip())


class ClipTextEncoder:
    """open_clip ViT-B-32 text tower with weights from a local file (or random, for tests)."""

    def __init__(self, weights: Path | str | None, device: str = "cpu"):
        import open_clip

        self.device = torch.device(device)
        if weights in (None, "random-init"):
            with warnings.catch_warnings(), _quiet_open_clip():
                warnings.simplefilter("ignore")
                self.model = open_clip.create_model("ViT-B-32", pretrained=None)
        else:
            path = Path(weights)
            if not path.is_file():  # a known name is fetched; a path never is
                from ..common.fetch import fetch_if_named

                path = fetch_if_named("clip-vit-b-32" if str(weights) in ("openai", "clip") else str(weights)) or path
            if not path.is_file():
                raise ClipWeightsError(
                    "CLIP ViT-B-32 weights not found (YOLO-World needs them for class-name embeddings)", path,
                    "download OpenAI's ViT-B-32.pt (the file ultralytics' clip package fetches) or an open_clip "
                    "ViT-B-32 checkpoint (e.g. laion2b_s34b_b79k) on a machine with internet access, copy it "
                    "here (e.g. ~/.cache/mvtec2coco/clip/ViT-B-32.pt) and pass --set clip_weights=PATH, or "
                    "--set clip_weights=openai to fetch it on first use; or pass --set text_encoder=random for a "
                    "smoke test")
            self.model = self._load(path)
        self.model = self.model.to(self.device).eval()
        self.tokenizer = open_clip.get_tokenizer("ViT-B-32")

    @staticmethod
    def _load(path: Path):
        import open_clip

        try:  # OpenAI's TorchScript archive
            return open_clip.load_openai_model(str(path), device="cpu", jit=False)
        except Exception:  # noqa: BLE001 - not TorchScript: an open_clip state dict
            with _quiet_open_clip():
                model = open_clip.create_model("ViT-B-32", pretrained=None)
            open_clip.load_checkpoint(model, str(path))
            return model

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), 512) L2-normalised text features."""
        tokens = self.tokenizer(texts).to(self.device)
        features = self.model.encode_text(tokens).float()
        return torch.nn.functional.normalize(features, dim=-1).cpu()


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    import logging

    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # "No pretrained weights loaded ..." is expected here
    try:
        yield
    finally:
        logger.setLevel(level)


def random_embeddings(texts: list[str], seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random unit vectors: for smoke tests only (they carry no meaning)."""
    from ...runtime.seeding import stable_int

    out = {}
    for text in texts:
        g = torch.Generator().manual_seed(seed * 1_000_003 + stable_int(text))
        out[text] = torch.nn.functional.normalize(torch.randn(EMBED_DIM, generator=g), dim=0)
    return out


def class_embeddings(names: list[str], encoder: ClipTextEncoder | None, templates: tuple[str, ...] = DEFAULT_TEMPLATES,
                     category: str = "product", words: dict[str, str] | None = None, seed: int = 0
                     ) -> dict[str, torch.Tensor]:
    """``{name: unit vector}`` for each class: prompt-ensembled CLIP features, or random ones."""
    if encoder is None:
        return random_embeddings(names, seed)
    if not templates or any("{}" not in t for t in templates):
        raise OptionError("every prompt template needs a '{}' for the class words", hint=str(templates))
    table = {}
    for name in names:
        prompts = [t.replace("{category}", category).format(class_words(name, words)) for t in templates]
        mean = encoder.encode(prompts).mean(dim=0)
        table[name] = torch.nn.functional.normalize(mean, dim=0)
    return table


def save_table(table: dict[str, torch.Tensor], path: Path) -> Path:
    """Save in ultralytics' cache format (``text_embeddings_clip_ViT-B_32.pt``: {text: tensor})."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.clone() for k, v in table.items()}, path)
    return path


def load_table(path: Path) -> dict[str, torch.Tensor]:
    """A table written by ``save_table`` (a resumed run reuses its own)."""
    from ..common.files import torch_file

    return torch_file(path, "text-embedding table")


@contextlib.contextmanager
def offline_text_features(table: dict[str, torch.Tensor]) -> Iterator[None]:
    """While active, ``WorldModel.get_text_pe`` answers from ``table`` instead of downloading CLIP."""
    from ultralytics.nn.tasks import WorldModel

    original = WorldModel.get_text_pe

    def get_text_pe(self, text, batch=80, cache_clip_model=False):  # noqa: ARG001 - ultralytics' signature
        missing = [t for t in text if t not in table]
        if missing:
            raise OptionError(f"no text embedding for {missing}", hint="the class names changed since the "
                              "embeddings were computed; train again")
        device = next(self.model.parameters()).device
        return torch.stack([table[t] for t in text]).to(device)[None]

    WorldModel.get_text_pe = get_text_pe
    try:
        yield
    finally:
        WorldModel.get_text_pe = original
