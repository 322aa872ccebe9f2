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
