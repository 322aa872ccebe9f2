"""Write ``configs/<family>/default.yaml`` from the code's defaults, each key with its comment.

The dataclasses are the single source of every default; these files show them in one place and
a test checks that each file still equals them. Run after changing a default:
``python tools/write_default_configs.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from pathlib import Path

import yaml

from mvtec2coco.models.autoencoder.config import AutoencoderRunConfig
from mvtec2coco.models.classifier.config import ExperimentConfig
from mvtec2coco.models.patchcore.config import PatchCoreRunConfig
from mvtec2coco.models.sam.config import SamConfig
from mvtec2coco.models.yolo_world.train import DetectorConfig

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"classifier": ExperimentConfig, "patchcore": PatchCoreRunConfig, "autoencoder": AutoencoderRunConfig,
            "sam": SamConfig, "yolo_world": DetectorConfig}
COMMANDS = {"classifier": "classifier", "patchcore": "patchcore", "autoencoder": "autoencoder", "sam": "sam",
            "yolo_world": "yolo-world"}


def _comments(cls: type) -> dict[str, str]:
    """Field name -> the comment after its line in the class source."""
    found = {}
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+):[^#]*#\s*(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def _value(v) -> str:
    text = yaml.safe_dump(v, default_flow_style=True, allow_unicode=True, width=1000).strip()
    return text[:-4].strip() if text.endswith("\n...") or text.endswith(" ...") else text.removesuffix("...").strip()


def lines_of(cls: type, instance, indent: str = "") -> list[str]:
    out = []
    comments = _comments(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            out.append(f"{indent}{f.name}:")
            out += lines_of(hints[f.name], value, indent + "  ")
            continue
        plain = list(value) if isinstance(value, tuple) else value
        text = f"{indent}{f.name}: {_value(plain)}"
        note = comments.get(f.name)
        out.append(f"{text}  # {note}" if note else text)
    return out


def render(family: str) -> str:
    cls = FAMILIES[family]
    head = [f"# Every setting of `mvtec2coco {COMMANDS[family]} train` with the code's default (written by",
            "# tools/write_default_configs.py; a test keeps it equal to the code). Copy it, change what you need,",
            "# and pass it with --config; --set key=value overrides single settings."]
    return "\n".join(head + lines_of(cls, cls())) + "\n"


def main() -> None:
    for family in FAMILIES:
        path = ROOT / "configs" / family / "default.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(family))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
