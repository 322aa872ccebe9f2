"""``mvtec2coco weights list|fetch|verify``: the known pretrained weights, and preparing an offline machine."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..errors import OptionError
from .base import out_console

app = typer.Typer(help="Pretrained weights: list the known files, fetch them (for an offline machine), verify the "
                       "cache.", no_args_is_help=True)


@app.command("list")
def list_weights() -> None:
    """Every known weights file: name, file, size, published hash, licence, users, and whether it is cached.

    Example: mvtec2coco weights list
    """
    from ..models.common.fetch import cached_path, recorded
    from ..models.common.registry import entries

    table = Table(title="known weights (fetched on first use; --offline or MVTEC2COCO_OFFLINE=1 never fetches)")
    for col in ("name", "file", "MB", "SHA-256", "licence", "used by", "cached"):
        table.add_column(col, overflow="fold")
    for entry in entries().values():
        path = cached_path(entry)
        digest = entry.published_hash
        if not entry.sha256 and not entry.sha256_prefix:
            seen = recorded(path) if path.is_file() else None
            digest = f"none published; recorded {seen['sha256'][:16]}..." if seen else "none published (recorded at "\
                "the first download)"
        table.add_row(entry.name, entry.file, f"{entry.size_mb:.0f}" if entry.size_mb else "-", digest, entry.licence,
                      entry.used_by, str(path) if path.is_file() else "-")
    out_console.print(table)


@app.command()
def fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Names from `weights list`.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every known file.")] = False,
) -> None:
    """Download (or find in the cache) and verify weights, e.g. before moving the cache to an offline machine.

    Example: mvtec2coco weights fetch resnet18 sam_vit_b
    """
    from ..models.common.fetch import ensure
    from ..models.common.registry import entries, lookup

    if all_ == bool(names):
        raise OptionError("pass weight names or --all (not both)", hint="see `mvtec2coco weights list`")
    chosen = list(entries().values()) if all_ else [lookup(n) for n in names or []]
    for entry in chosen:
        out_console.print(f"{entry.name}: {ensure(entry)}")


@app.command()
def verify(
    names: Annotated[list[str] | None, typer.Argument(help="Names from `weights list` (default: every cached file).")]
    = None,
) -> None:
    """Hash every cached weights file again; a file that fails is deleted and fetched again (unless offline).

    Exit code 1 if a file failed and could not be fetched again.
    Example: mvtec2coco weights verify
    """
    from ..models.common.fetch import WeightsNotFoundError, cached_path, ensure, verify_file
    from ..models.common.registry import entries, lookup

    chosen = [lookup(n) for n in names] if names else list(entries().values())
    failed = 0
    for entry in chosen:
        path = cached_path(entry)
        if not path.is_file():
            if names:
                out_console.print(f"{entry.name}: not cached ({path})")
            continue
        problem = verify_file(entry, path)
        if problem is None:
            out_console.print(f"{entry.name}: ok ({path})")
            continue
        out_console.print(f"{entry.name}: {problem}: deleted, fetching again", markup=False)
        path.unlink()
        try:
            out_console.print(f"{entry.name}: fetched again ({ensure(entry)})")
        except WeightsNotFoundError as exc:
            failed += 1
            out_console.print(f"{entry.name}: {exc}", markup=False)
    if failed:
        raise typer.Exit(1)
