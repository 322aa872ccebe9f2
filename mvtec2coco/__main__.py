"""``python -m mvtec2coco``."""

from .cli import run

run()
