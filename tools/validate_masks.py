#!/usr/bin/env python3
"""Check a dataset's source masks (sizes, channels, values, empty masks, masks on good images,
orphans, tiny and border regions) before converting it.

Usage: python tools/validate_masks.py ROOT [--layout L] [--category C ...] [--tiny N] [--json FILE]
Exit code 1 if any error is found, 0 otherwise (warnings and notes do not fail).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mvtec2coco.errors import Mvtec2CocoError
from mvtec2coco.validate import validate_dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--layout")
    parser.add_argument("--category", action="append")
    parser.add_argument("--tiny", type=int, default=3, help="report regions of at most this many pixels")
    parser.add_argument("--json", type=Path, help="write the findings here")
    args = parser.parse_args()
    try:
        result = validate_dataset(args.root, args.layout, args.category, args.tiny)
    except Mvtec2CocoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, check in result["checks"].items():
        if check["count"]:
            print(f"{check['level']:7s} {name}: {check['count']}")
            for example in check["examples"][:5]:
                print(f"        {example}")
    print(f"{result['masks']} masks in {result['images']} images: {result['errors']} error(s), "
          f"{result['warnings']} warning(s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
