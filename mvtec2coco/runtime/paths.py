"""Resolve output paths and check them against input paths, before any work starts.

The rule every writing command follows: an output may never be, contain, or replace an input
path, nor lie inside an input folder (a dataset stays byte-identical). Paths are compared after
resolving symbolic links and ``..``, and by inode as well, so bind mounts and links to the same
folder are caught. An output that could only fail after all the work (under a file, on a
read-only filesystem, a mount point, a dangling link, a name too long) is refused here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import OutputError


def resolve(path: Path | str, what: str = "output path") -> Path:
    """``path`` made absolute with every symbolic link and ``..`` resolved; a dangling or looping
    link is refused (writing through it would land somewhere nobody asked for)."""
    path = Path(path)
    if str(path) == "":
        raise OutputError(f"{what} is empty", hint="pass a folder path")
    if path.is_symlink() and not path.exists():
        target = os.readlink(path)
        try:
            path.resolve(strict=True)
        except RuntimeError:
            raise OutputError(f"{what} is a symbolic link that loops", path, "remove the link") from None
        except OSError as exc:
            if exc.errno == 40:  # ELOOP
                raise OutputError(f"{what} is a symbolic link that loops", path, "remove the link") from None
        raise OutputError(f"{what} is a symbolic link to a missing path ({target})", path,
                          "create the target or remove the link")
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # a loop further up the path
        raise OutputError(f"{what} cannot be resolved ({exc})", path) from exc


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        try:
            os.lstat(candidate)
            return candidate
        except OSError:
            continue
    return Path(path.anchor)


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside_or_equal(child: Path, parent: Path) -> bool:
    """``child`` is ``parent`` or below it, by resolved path or by inode of an existing ancestor."""
    if child == parent or parent in child.parents:
        return True
    if not parent.exists():
        return False
    return any(_same(candidate, parent) for candidate in (child, *child.parents) if candidate.exists())


def _check_name_lengths(path: Path, what: str) -> None:
    """Refuse a path with a component longer than its filesystem allows (before any stat fails
    on it with a less helpful error)."""
    base = _existing_ancestor(path)
    try:
        name_max = os.pathconf(base if base.is_dir() else base.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            raise OutputError(f"{what} has a name longer than the filesystem allows ({name_max} bytes)", path,
                              "choose a shorter name")


def _check_writable_place(out: Path, what: str) -> None:
    base = _existing_ancestor(out)
    if base != out and not base.is_dir():
        raise OutputError(f"{what} lies under a file ({base})", out, "choose a path inside a folder")
    folder = out.parent if base == out else base  # where the first new entry is made
    name_max = 255
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        pass
    for part in (out.name,) if base == out else out.relative_to(base).parts:
        if len(os.fsencode(part)) > name_max:
            raise OutputError(f"{what} has a name longer than the filesystem allows ({name_max} bytes)", out,
                              "choose a shorter name")
    try:
        flags = os.statvfs(folder).f_flag
    except OSError:
        flags = 0
    if flags & os.ST_RDONLY:
        raise OutputError(f"{what} is on a read-only filesystem", out, "choose another location")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write in {folder} (permission denied)", out, "choose another location")


def check_inputs(out: Path, inputs: Iterable[Path], what: str = "output") -> None:
    """Refuse ``out`` if it is an input, contains one, or lies inside an input folder."""
    for given in inputs:
        if given is None:
            continue
        try:
            source = Path(given).resolve()
        except (RuntimeError, OSError):
            continue
        if _inside_or_equal(out, source):
            relation = "is" if out == source or _same(out, source) else "lies inside"
            raise OutputError(f"{what} {relation} the input {source}", out,
                              "choose an output outside the inputs; nothing was written")
        if _inside_or_equal(source, out):
            raise OutputError(f"{what} contains the input {source} (writing it would replace the input)", out,
                              "choose an output outside the inputs; nothing was written")


def check_output(out: Path | str, inputs: Sequence[Path] = (), overwrite: bool = False,
                 files: Sequence[Path] = ()) -> Path:
    """The resolved output folder, checked before any work; raises ``OutputError`` otherwise.

    ``inputs`` are the folders and files read; ``files`` the individual input files, followed
    only when an existing ``out`` is about to be replaced (one of them may link into it).
    """
    from .staging import check_replaceable

    given = Path(out)
    _check_name_lengths(Path(os.path.abspath(given)), "output folder")
    resolved = resolve(given)
    if os.path.ismount(resolved):
        raise OutputError("output folder is a mount point (it cannot be replaced atomically)", given,
                          "choose a folder inside it")
    check_inputs(resolved, inputs)
    _check_writable_place(resolved, "output folder")
    check_replaceable(resolved, overwrite)
    if resolved.is_dir():
        for file in files:
            if os.path.islink(file) and _inside_or_equal(Path(os.path.realpath(file)), resolved):
                raise OutputError(f"output folder holds the target of the input link {file}", given,
                                  "choose another output folder")
    return resolved


def check_output_file(path: Path | str, inputs: Sequence[Path] = ()) -> Path:
    """The resolved path of one output file (a report, a plot), checked like an output folder."""
    _check_name_lengths(Path(os.path.abspath(path)), "output file")
    resolved = resolve(Path(path), "output file")
    if resolved.is_dir():
        raise OutputError("output file is a folder", path, "pass a file name")
    if resolved.exists() and not resolved.is_file():  # a device, a pipe, a socket: never replaced by a file
        raise OutputError("output file exists and is not a regular file", path, "pass a file name")
    check_inputs(resolved, inputs, "output file")
    _check_writable_place(resolved, "output file")
    return resolved
