"""Choosing the torch device from a setting: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

from __future__ import annotations

import torch

from ...errors import OptionError

DEVICES = "auto, cpu, cuda, cuda:N or N"


def pick_device(name: str | int | None) -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``N`` means ``cuda:N``. A device this machine
    does not have, or a name torch does not know, is a user error named in one line."""
    text = "auto" if name is None else str(name).strip()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text.isdigit():
        text = f"cuda:{text}"
    if text == "cpu":
        return torch.device("cpu")
    if text != "cuda" and not (text.startswith("cuda:") and text[5:].isdigit()):
        raise OptionError(f"unknown device '{name}'", hint=f"use {DEVICES}")
    if not torch.cuda.is_available():
        raise OptionError(f"device '{name}' asked for but CUDA is not available", hint="use --device cpu or auto")
    index = int(text[5:]) if ":" in text else 0
    if index >= torch.cuda.device_count():
        raise OptionError(f"device '{name}' asked for but this machine has {torch.cuda.device_count()} GPU(s)",
                          hint=f"use {DEVICES}")
    return torch.device(text)


def ultralytics_device(name: str | int | None) -> str:
    """The device string ultralytics understands (``cpu``, ``0``, ``0,1``) for one of ours;
    several GPUs as ``0,1`` are passed on after each is checked."""
    text = "auto" if name in (None, "") else str(name).strip()
    if "," in text:
        for part in text.split(","):
            pick_device(part)
        return text
    device = pick_device(text)
    return "cpu" if device.type == "cpu" else str(device.index or 0)
