"""Weights fetched on first use, verified, cached; never fetched when offline.

Where a file lives: torchvision's weights in torchvision's own cache (``$TORCH_HOME/hub/
checkpoints``, default ``~/.cache/torch``), everything else in ``$MVTEC2COCO_CACHE/weights``
(default ``~/.cache/mvtec2coco/weights``). A file found there is hashed once; a sidecar
``<file>.sha256`` then records its hash, size and modification time, and later uses trust the
file while size and time match (``weights verify`` hashes again).

Downloads use ``torch.hub.download_url_to_file`` (its progress bar, its temporary file beside
the target, its hash-prefix check) into ``<file>.download``; the full hash is checked there and
only then is the file renamed into place, so a broken or partial transfer is never where a loader
looks. ``MVTEC2COCO_WEIGHTS_MIRROR=URL`` fetches the same file names from ``URL/<file>`` with the
same checks; ``MVTEC2COCO_OFFLINE=1`` (``--offline``) forbids any download.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ...errors import WeightsError
from .registry import WeightsEntry, lookup

OFFLINE_ENV = "MVTEC2COCO_OFFLINE"
MIRROR_ENV = "MVTEC2COCO_WEIGHTS_MIRROR"
CACHE_ENV = "MVTEC2COCO_CACHE"


class WeightsNotFoundError(WeightsError):
    """A weight file is not on this machine and may not (or cannot) be downloaded."""


def is_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir(entry: WeightsEntry) -> Path:
    if entry.cache == "torch":
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints"
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mvtec2coco")
    return Path(base) / "weights"


def cached_path(entry: WeightsEntry) -> Path:
    return cache_dir(entry) / entry.file


def source_url(entry: WeightsEntry) -> str:
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{entry.file}" if mirror else entry.url


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def recorded(path: Path) -> dict | None:
    """The sidecar of a verified file, or None."""
    try:
        data = json.loads(_sidecar(path).read_text())
        return data if isinstance(data, dict) and isinstance(data.get("sha256"), str) else None
    except (OSError, ValueError):
        return None


def _trusted(path: Path) -> bool:
    data = recorded(path)
    if data is None:
        return False
    stat = path.stat()
    return data.get("size") == stat.st_size and data.get("mtime_ns") == stat.st_mtime_ns


def _record(path: Path, digest: str) -> None:
    stat = path.stat()
    text = json.dumps({"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}) + "\n"
    tmp = _sidecar(path).with_name(_sidecar(path).name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, _sidecar(path))


def hash_problem(entry: WeightsEntry, digest: str, previous: str | None = None) -> str | None:
    """Why ``digest`` is not this entry's file: the published hash, else the recorded one."""
    if entry.sha256 and digest != entry.sha256.lower():
        return f"SHA-256 {digest[:16]}... is not the published {entry.sha256[:16]}..."
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix.lower()):
        return f"SHA-256 {digest[:16]}... does not start with the published prefix {entry.sha256_prefix}"
    if not entry.sha256 and not entry.sha256_prefix and previous and digest != previous:
        return f"SHA-256 {digest[:16]}... is not the one recorded at its first download ({previous[:16]}...)"
    return None


def verify_file(entry: WeightsEntry, path: Path) -> str | None:
    """Hash ``path`` again and check it (``weights verify``); records it when it passes."""
    previous = (recorded(path) or {}).get("sha256")
    digest = sha256_of(path)
    problem = hash_problem(entry, digest, previous)
    if problem is None:
        _record(path, digest)
    return problem


def ensure(name: str | WeightsEntry, progress: bool = True) -> Path:
    """The local path of the weights ``name``: from the cache (hashed once, then trusted), else
    downloaded and verified. A cached file that fails its hash is never used, nor deleted here
    (it may be a user's own file under that name): ``weights verify`` replaces it."""
    entry = name if isinstance(name, WeightsEntry) else lookup(name)
    path = cached_path(entry)
    if path.is_file():
        if _trusted(path):
            return path
        problem = verify_file(entry, path)
        if problem is None:
            return path
        raise WeightsError(f"cached {entry.name} weights fail their hash check ({problem})", path,
                           f"`mvtec2coco weights verify {entry.name}` deletes and fetches it again, or delete it")
    if is_offline():
        raise WeightsNotFoundError(
            f"{entry.name} weights are not on this machine and downloads are off (offline)", path,
            f"download {entry.url} on a machine with internet access and copy it to {path.parent}/, or set "
            f"{MIRROR_ENV} and drop --offline / {OFFLINE_ENV}")
    return download(entry, path, progress)


def download(entry: WeightsEntry, path: Path, progress: bool = True) -> Path:
    """Fetch ``entry`` to ``path`` through ``<file>.download``: checked, then renamed into place."""
    import http.client
    import urllib.error

    import torch

    url = source_url(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".download")
    hint = f"check the network or {MIRROR_ENV}, or download {entry.url} elsewhere and copy it to {path.parent}/"
    try:
        torch.hub.download_url_to_file(url, str(part), hash_prefix=entry.sha256_prefix, progress=progress)
    except urllib.error.HTTPError as exc:
        _remove(part)
        raise WeightsError(f"{url}: download of {entry.name} failed: HTTP {exc.code} {exc.reason}", None, hint) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        _remove(part)
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(f"{url}: download of {entry.name} failed ({reason})", None, hint) from None
    except RuntimeError as exc:  # torch's hash-prefix check; it has deleted its temporary file
        _remove(part)
        raise WeightsError(f"{url}: downloaded {entry.file} fails its hash check ({exc}); it was deleted", None,
                           "the mirror or the download is corrupt: fetch it again from the publisher") from None
    digest = sha256_of(part)
    problem = hash_problem(entry, digest)
    if problem:
        _remove(part)
        raise WeightsError(f"{url}: downloaded {entry.file} fails its hash check ({problem}); it was deleted", None,
                           "the mirror or the download is corrupt: fetch it again from the publisher")
    os.replace(part, path)
    _record(path, digest)
    return path


def _remove(path: Path) -> None:
    for p in (path, _sidecar(path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def fetch_if_named(value: str) -> Path | None:
    """The fetched (or cached) file of a known weights name given bare (``sam_vit_b``,
    ``yolov8s-worldv2.pt``), or None: a path, even a missing one, is never looked up or downloaded."""
    from .registry import find

    if value != Path(value).name:
        return None
    entry = find(value)
    return ensure(entry) if entry is not None else None


def resolve(value: str, what: str) -> Path:
    """An explicit path wins (never downloaded); else a registry name is fetched (``ensure``)."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    fetched = fetch_if_named(value)
    if fetched is None:
        raise WeightsNotFoundError(f"{what} does not exist and no known weights have this name", path,
                                   "pass an existing file or a name from `mvtec2coco weights list`")
    return fetched
