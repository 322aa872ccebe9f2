"""``python -m mvtec2coco``."""

from .cli import main

main()
