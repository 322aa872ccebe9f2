"""Typed errors. Library code raises these; the CLI turns them into one line and exit code 2."""

from __future__ import annotations

from pathlib import Path


class Mvtec2CocoError(Exception):
    """Base class of every error this package raises on purpose.

    ``path`` names the file or folder at fault, ``hint`` says how to fix it; both end up in
    the one line the CLI prints.
    """

    def __init__(self, message: str, path: Path | str | None = None, hint: str | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path is not None else self.message
        return f"{text} ({self.hint})" if self.hint else text


class DatasetError(Mvtec2CocoError):
    """The dataset folder cannot be read as the chosen layout."""


class UnknownLayoutError(DatasetError):
    """No known layout matches the folder."""


class PairingError(DatasetError):
    """An image lacks its mask, or a mask lacks its image."""


class SizeMismatchError(DatasetError):
    """A mask's size differs from its image's size."""


class BrokenFileError(DatasetError):
    """A file is unreadable, truncated or not an image."""


class EmptyCategoryError(DatasetError):
    """A category folder holds no images."""


class OptionError(Mvtec2CocoError):
    """An option value is malformed or contradicts another option."""


class OutputError(Mvtec2CocoError):
    """An output path cannot be written, or writing it would touch an input."""


class OutputExistsError(OutputError):
    """The output folder exists and is not empty (or is not ours to replace)."""


class ConfigError(OptionError):
    """A configuration file is unreadable or holds keys or values the code does not know."""


class WeightsError(Mvtec2CocoError):
    """A weights or checkpoint file is missing, not a checkpoint, or for another model."""


class VerificationError(Mvtec2CocoError):
    """An output folder cannot be read back."""
