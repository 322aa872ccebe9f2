"""The pretrained weights the model families know: file, official URL, size, hash, licence, users.

Hashes are the publishers' own: torchvision's and SAM's file names carry a SHA-256 prefix, and
OpenAI's CLIP URLs the full SHA-256. Where none is published (ultralytics' assets), the entry
says so and ``fetch`` records the hash of the first verified download. torchvision's entries
come from torchvision's own weight tables, so they follow the installed version.

More entries (an internal model, a test's small file) come from the JSON list named by
``MVTEC2COCO_WEIGHTS_REGISTRY`` (objects with this dataclass's fields) or from ``register``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from ...errors import OptionError, WeightsError

REGISTRY_ENV = "MVTEC2COCO_WEIGHTS_REGISTRY"
TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "wide_resnet50_2")  # the classifier's and PatchCore's
SAM_BASE = "https://dl.fbaipublicfiles.com/segment_anything"
ULTRALYTICS_RELEASES = "https://github.com/ultralytics/assets/releases/download"


def ultralytics_assets() -> str:
    """Where the installed ultralytics fetches its assets: the release ``v<major>.<minor>.0``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = version("ultralytics").split(".")[:2]
    except (PackageNotFoundError, ValueError):
        major, minor = "8", "4"
    return f"{ULTRALYTICS_RELEASES}/v{major}.{minor}.0"


@dataclass(frozen=True)
class WeightsEntry:
    """One known weights file."""

    name: str  # what a config names (``resnet18``, ``sam_vit_b``, ``yolov8s-worldv2``, ``clip-vit-b-32``)
    file: str  # its file name, in the cache and on a mirror
    url: str  # where the publisher serves it
    size_mb: float | None  # as published, for the listing (never used to judge a file)
    sha256: str | None = None  # full hash, where published
    sha256_prefix: str | None = None  # hash prefix carried by the file name (torchvision, SAM)
    licence: str = ""
    used_by: str = ""
    cache: str = "mvtec2coco"  # "torch": torchvision's own cache ($TORCH_HOME/hub/checkpoints)

    @property
    def published_hash(self) -> str:
        return self.sha256 or (f"{self.sha256_prefix}... (prefix)" if self.sha256_prefix else "none published")


_EXTRA: dict[str, WeightsEntry] = {}


def _torchvision_entries() -> list[WeightsEntry]:
    from torchvision.models import get_model_weights

    entries = []
    for arch in TORCHVISION_ARCHS:
        weights = get_model_weights(arch).DEFAULT
        file = weights.url.rsplit("/", 1)[-1]
        prefix = file.rsplit("-", 1)[-1].split(".")[0] if "-" in file else None
        entries.append(WeightsEntry(arch, file, weights.url, weights.meta.get("_file_size"), None, prefix,
                                    "BSD-3-Clause (torchvision); ImageNet terms for the data",
                                    "classifier, patchcore (weights: imagenet)", cache="torch"))
    return entries


def builtin_entries() -> list[WeightsEntry]:
    """The entries the project ships with (torchvision's from its installed tables)."""
    sam = [WeightsEntry(f"sam_{kind}", f"sam_{kind}_{prefix}.pth", f"{SAM_BASE}/sam_{kind}_{prefix}.pth", size, None,
                        prefix, "Apache-2.0 (Meta, segment-anything)", "sam (checkpoint)")
           for kind, prefix, size in (("vit_b", "01ec64", 375.0), ("vit_l", "0b3195", 1250.0), ("vit_h", "4b8939", 2560.0))]
    assets = ultralytics_assets()
    world = [WeightsEntry(stem, f"{stem}.pt", f"{assets}/{stem}.pt", None, None, None,
                          "AGPL-3.0 (Ultralytics)", "yolo-world (model)")
             for stem in ("yolov8s-worldv2", "yolov8m-worldv2", "yolov8l-worldv2")]
    clip = WeightsEntry("clip-vit-b-32", "ViT-B-32.pt",
                        "https://openaipublic.azureedge.net/clip/models/"
                        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt", None,
                        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", None,
                        "MIT (OpenAI CLIP)", "yolo-world (clip_weights: class-name embeddings)")
    return [*_torchvision_entries(), *sam, *world, clip]


def _from_env() -> list[WeightsEntry]:
    path = os.environ.get(REGISTRY_ENV)
    if not path:
        return []
    names = {f.name for f in fields(WeightsEntry)}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return [WeightsEntry(**{k: v for k, v in item.items() if k in names}) for item in data]
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise WeightsError(f"weights registry file cannot be read ({type(exc).__name__}: {exc})", path,
                           f"a JSON list of objects with {', '.join(sorted(names))}") from exc


def register(entry: WeightsEntry) -> None:
    """Add (or replace) an entry for this process."""
    _EXTRA[entry.name] = entry


def entries() -> dict[str, WeightsEntry]:
    """Every known entry by name: built-in, then the registry file's, then ``register``'s."""
    found = {e.name: e for e in builtin_entries()}
    found.update({e.name: e for e in _from_env()})
    found.update(_EXTRA)
    return found


def lookup(name: str) -> WeightsEntry:
    """The entry called ``name`` (or whose file is ``name``), or an ``OptionError`` listing them."""
    known = entries()
    if name in known:
        return known[name]
    by_file = [e for e in known.values() if e.file == Path(name).name]
    if by_file:
        return by_file[0]
    raise OptionError(f"no weights called '{name}'", hint=f"known: {', '.join(sorted(known))} "
                      "(mvtec2coco weights list), or pass a path to a file")


def find(name: str) -> WeightsEntry | None:
    """``lookup`` without the error: None for a name that no entry has."""
    try:
        return lookup(name)
    except OptionError:
        return None
