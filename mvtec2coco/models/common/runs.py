"""Run folders of every family: a new run gets a fresh folder, ``--resume RUN`` continues one with
its own resolved ``config.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError, OptionError, OutputExistsError
from . import config as configs


@dataclass(frozen=True)
class RunPlan:
    config: Any
    out: Path
    resume: bool


def new_run(cfg: Any, target: Path) -> RunPlan:
    """A new run into ``target``, which must not hold files yet."""
    target = Path(target)
    if target.is_dir() and any(target.iterdir()):
        raise OutputExistsError("run folder already holds files", target,
                                f"continue that run with --resume {target}, or pass another --out")
    if target.exists() and not target.is_dir():
        raise OutputExistsError("run folder is a file", target, "pass another --out")
    return RunPlan(cfg, target, False)


def resume_run(cls: type, folder: Path, checkpoint: str, given: dict[str, Any],
               machine: dict[str, Any] | None = None) -> RunPlan:
    """The stopped run in ``folder`` with its own ``config.yaml``; ``given`` (option name -> value)
    must all be unset, since a resumed run cannot change its settings. ``machine`` (setting ->
    value, e.g. the device) may change: where a run continues is not what it learns."""
    changed = [name for name, value in given.items() if value not in (None, [], ())]
    if changed:
        raise OptionError(f"--resume continues a run with its own settings: {', '.join(changed)} cannot be given",
                          folder, "start a new run to change them")
    path = Path(folder) / "config.yaml"
    if not path.is_file():
        raise ConfigError("no config.yaml: not a run folder of mvtec2coco", folder)
    if not (Path(folder) / checkpoint).is_file():
        raise OptionError(f"no {checkpoint} to resume from (the run stopped before its first epoch ended)", folder,
                          "start it again as a new run")
    return RunPlan(configs.load(cls, path, None, machine), Path(folder), True)


def plan_run(cls: type, family: str, config: Path | None, sets: list[str] | None, options: dict[str, Any],
             out: Path | None, resume: Path | None, checkpoint: str) -> RunPlan:
    """A new run (defaults <- ``config`` <- ``options`` <- ``sets``, into ``out``, by default
    ``runs/<family>/<config stem>``) or, with ``resume``, the stopped run in that folder."""
    if resume is not None:
        machine = {k: v for k, v in options.items() if k.split(".")[-1] == "device"}
        return resume_run(cls, resume, checkpoint, {"--config": config, "--set": sets, "--out": out,
                                                    **{f"--{k.split('.')[-1].replace('_', '-')}": v
                                                       for k, v in options.items() if k not in machine}}, machine)
    cfg = configs.load(cls, config, sets, options)
    name = Path(config).stem if config is not None else "run"
    return new_run(cfg, Path(out) if out is not None else Path("runs") / family / name)
