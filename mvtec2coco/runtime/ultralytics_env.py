"""Settings that keep ultralytics offline and quiet inside our process; call before importing it."""

from __future__ import annotations

import os
from pathlib import Path


def quiet_offline_ultralytics(config_dir: Path | None = None) -> None:
    """No network, no settings sync, no chatter; settings live in our own folder.

    Values already set by the user win. ``YOLO_CONFIG_DIR`` defaults to
    ``~/.cache/mvtec2coco/ultralytics`` so that ultralytics never writes into the user's home config.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")  # never pip-install missing packages at run time
    os.environ.setdefault("YOLO_VERBOSE", "False")
    folder = config_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mvtec2coco" / "ultralytics"
    if "YOLO_CONFIG_DIR" not in os.environ:
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)


def no_label_caches() -> None:
    """ultralytics saves a ``labels/<subset>.cache`` beside the labels it reads, which would write
    into the conversion a command was given as input: in our process it saves none (the labels
    are read again each run, which takes a moment, not a change to the user's data)."""
    import ultralytics.data.dataset as dataset
    import ultralytics.data.utils as utils

    def skip(prefix, path, x, version):  # noqa: ARG001 - ultralytics' signature
        x["version"] = version  # what the original adds in place before writing; the reader expects it

    dataset.save_dataset_cache_file = skip
    utils.save_dataset_cache_file = skip
