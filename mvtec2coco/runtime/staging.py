"""Write a whole output folder or nothing: build it in a hidden sibling, rename it into place.

This module owns every temporary tree the package makes:

- each one holds a marker (``.mvtec2coco-staging.json``: owner pid, host, boot id, process start
  time), so that a tree left behind by SIGKILL or a power loss is recognised as stale and removed,
  with a one-line notice, by the next run that writes the same output;
- SIGTERM and SIGHUP end a run the way Ctrl-C does (the CLI raises ``Interrupted`` for all three), so
  the clean-up below runs for ``timeout``, ``docker stop`` and job schedulers too;
- an ``OSError`` raised while a tree is built (a full disk, a read-only mount, an unreadable
  input) becomes a typed error naming the file, after the tree is gone;
- every finished output holds ``.mvtec2coco``, and ``--overwrite`` replaces only folders that
  hold it, so that no command can delete a folder it did not write.

Output paths are checked against input paths before any of this (``paths.check_output``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import BrokenFileError, Mvtec2CocoError, OutputError, OutputExistsError

STAGING_MARKER = ".mvtec2coco-staging.json"
OWNED_MARKER = ".mvtec2coco"
TMP_TAG = ".m2c-tmp-"
OLD_TAG = ".m2c-old-"
NAME_KEEP = 180  # characters of the output's name kept in a temporary name (names are <= 255 bytes)
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EMLINK}
HINTS = {errno.ENOSPC: "free some disk space (or inodes) or choose another --out",
         errno.EDQUOT: "the disk quota is used up; free some space or choose another --out",
         errno.EROFS: "the filesystem is read-only; choose another --out",
         errno.EACCES: "check the permissions", errno.EPERM: "check the permissions"}
_NOTICES: list[Callable[[str], None]] = []  # where stale-tree notices go (the CLI prints them)


class Interrupted(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP arrived: every clean-up runs, the signal is kept for the exit code.

    Not a ``KeyboardInterrupt``: typer would turn that into a silent exit 130 before the CLI can
    say what happened."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def on_notice(callback: Callable[[str], None]) -> None:
    """Send one-line notices (stale trees removed) to ``callback`` instead of dropping them."""
    _NOTICES.append(callback)


def _notice(text: str) -> None:
    for callback in _NOTICES:
        callback(text)


def _raise_interrupted(signum: int, _frame) -> None:
    _STOPPING[0] = signum
    raise Interrupted(signum)


_STOPPING = [0]  # the stop signal this process received, 0 while none has


def install_signal_handlers(ctrl_c: bool = False) -> None:
    """SIGTERM and SIGHUP (and with ``ctrl_c`` SIGINT) raise ``Interrupted`` in the main thread.

    A handler the host program set itself is left alone (only default actions are replaced),
    so that library use inside another application changes nothing there. An ``Interrupted``
    that Python swallows is sent again (``_stop_swallowed``).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _raise_interrupted)
    if ctrl_c:
        signal.signal(signal.SIGINT, _raise_interrupted)
    if sys.unraisablehook is not _stop_swallowed:
        _SWALLOWED_BEFORE[0] = sys.unraisablehook
        sys.unraisablehook = _stop_swallowed


RESEND_AFTER = 0.02  # seconds before a swallowed stop signal is sent again (the swallowing code has returned by then)
_SWALLOWED_BEFORE: list[Callable] = [sys.__unraisablehook__]  # the hook ``_stop_swallowed`` hands other errors to


def _stop_swallowed(unraisable) -> None:
    """Where Python cannot raise an error it reports it here and goes on: a ``__del__``, or a
    hook that runs right after a fork (``logging`` releases its lock in one). A stop signal whose
    ``Interrupted`` was raised there would be lost, and the run would go on to finish: seen with
    torch's DataLoader forking its workers, a SIGTERM in about one run in twenty. The signal is
    sent again a moment later, so that its handler raises once Python is back in code that can
    stop (where that is swallowed too, it comes here again). Once a stop is under way, other
    errors reported here are dropped: they come from objects the stop left half-built (torch's
    DataLoader iterator, stopped in its constructor, fails in its ``__del__``) and would print a
    traceback after the one line that says the run was interrupted."""
    exc = unraisable.exc_value
    if _STOPPING[0] and not isinstance(exc, Interrupted):
        return  # a stop is under way: objects it left half-built fail in their __del__, which says nothing new
    if isinstance(exc, Interrupted):
        try:  # a moment later, from another thread: sent at once, its handler would run in here, swallowed again
            resend = threading.Timer(RESEND_AFTER, os.kill, (os.getpid(), exc.signum))
            resend.daemon = True
            resend.start()
        except RuntimeError:  # no new threads (the interpreter is shutting down): it stops anyway
            pass
        return
    _SWALLOWED_BEFORE[0](unraisable)


def reset_signals_in_child() -> None:
    """Worker processes die quietly on Ctrl-C, SIGTERM and SIGHUP: the main process cleans up."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@contextmanager
def signals_held() -> Iterator[None]:
    """Ignore Ctrl-C, SIGTERM and SIGHUP while a clean-up or the final renames run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None if it does not run."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return ""
        return ""  # alive, start time unknown (not Linux)
    return stat.rsplit(")", 1)[1].split()[19]


def owner() -> dict:
    """Who builds a temporary tree: enough to tell later whether that process still runs."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot_id": _boot_id(),
            "started": _start_time(os.getpid())}


def is_stale(marker: dict) -> bool | None:
    """True if the marker's process is gone, False if it still runs, None if it cannot be told
    (another host)."""
    if marker.get("host") != socket.gethostname():
        return None
    if marker.get("boot_id") and marker.get("boot_id") != _boot_id():
        return True
    started = _start_time(int(marker.get("pid", -1)))
    if started is None:
        return True
    return bool(started and marker.get("started") and started != marker["started"])  # pid reused


def _temp_name(out: Path, tag: str) -> str:
    return f".{out.name[:NAME_KEEP]}{tag}{uuid.uuid4().hex[:8]}"


def _read_marker(tree: Path) -> dict | None:
    try:
        data = json.loads((tree / STAGING_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def clean_stale(out: Path) -> None:
    """Remove temporary trees of ``out`` left by processes that no longer run; refuse to start
    while another live process builds the same output."""
    parent, prefix = out.parent, f".{out.name[:NAME_KEEP]}"
    try:
        with os.scandir(parent) as it:
            names = [e.name for e in it if e.name.startswith(prefix) and (TMP_TAG in e.name or OLD_TAG in e.name)]
    except OSError:
        return
    for name in sorted(names):
        tree = parent / name
        marker = _read_marker(tree)
        if marker is None:
            try:
                empty = tree.is_dir() and not any(tree.iterdir())
            except OSError:
                empty = False
            if empty:  # killed between creating the folder and writing its marker
                tree.rmdir()
            continue
        if marker.get("target") != out.name:
            continue
        stale = is_stale(marker)
        if stale is None:
            _notice(f"{tree}: temporary tree of a run on host {marker.get('host')} (pid {marker.get('pid')}) left in "
                    "place; remove it if that run has ended")
        elif stale:
            shutil.rmtree(tree, ignore_errors=True)
            _notice(f"removed {tree}: left by an interrupted run (pid {marker.get('pid')}, no longer running)")
        elif int(marker.get("pid", -1)) != os.getpid():
            raise OutputError(f"another mvtec2coco process (pid {marker.get('pid')}) is writing this output",
                              out, "wait for it to finish or choose another --out")


def _mark(tree: Path, out: Path) -> None:
    text = json.dumps({**owner(), "target": out.name}) + "\n"
    (tree / STAGING_MARKER).write_text(text)


def is_owned(folder: Path) -> bool:
    """Whether ``folder`` is an output this package wrote (so ``--overwrite`` may replace it)."""
    return (folder / OWNED_MARKER).is_file()


def check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite`` and it is an output of this package."""
    if out.exists() and not out.is_dir():
        raise OutputError("output path is a file", out, "choose a folder path")
    if not out.is_dir():
        return
    try:
        empty = not any(out.iterdir())
    except OSError as exc:
        raise OutputError(f"cannot list the output folder: {exc.strerror}", out) from exc
    if empty:
        return
    if not overwrite:
        raise OutputExistsError("output folder is not empty", out, "pass --overwrite or choose another folder")
    if not is_owned(out):
        raise OutputExistsError(f"folder was not written by mvtec2coco (no {OWNED_MARKER} inside); --overwrite "
                                "replaces only outputs of mvtec2coco", out, "remove it yourself or choose another folder")


def translate_os_error(exc: OSError, staging: Path | None, out: Path) -> Mvtec2CocoError:
    """An ``OSError`` met while building ``out`` in ``staging``, as a typed error naming the file:
    a write into the output (named by its final path), or a read of an input."""
    name = exc.filename if isinstance(exc.filename, str) else None
    reason = exc.strerror or str(exc)
    in_output = name is None or exc.errno in WRITE_ERRNOS
    if name is not None and staging is not None and (name == str(staging) or name.startswith(f"{staging}/")):
        name = str(out) + name[len(str(staging)):]
        in_output = True
    if in_output:
        return OutputError(f"cannot write the output: {reason}", name or out, HINTS.get(exc.errno or 0))
    return BrokenFileError(f"cannot read: {reason}", name, HINTS.get(exc.errno or 0))


@contextmanager
def staged_output(out: Path, overwrite: bool = False, inputs: Sequence[Path] = (),
                  files: Sequence[Path] = ()) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out``, on error it goes.

    ``out`` is checked first (``paths.check_output``: never an input, nor inside or above one;
    no file, mount point or dangling link); the temporary folder sits on the same filesystem, so
    the final step is a rename: a crash, Ctrl-C, SIGTERM or SIGHUP at any moment leaves either
    the old ``out`` or the complete new one (after SIGKILL, a marked tree the next run removes).
    """
    from .paths import check_output

    out = check_output(out, inputs, overwrite, files)
    install_signal_handlers()
    tmp = out.parent / _temp_name(out, TMP_TAG)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(out)
        tmp.mkdir()
        _mark(tmp, out)
    except BaseException as exc:  # a signal between the mkdir and the marker too: no tree may stay
        with signals_held():
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise translate_os_error(exc, tmp, out) from exc
        raise
    try:
        yield tmp
        (tmp / STAGING_MARKER).unlink()
        (tmp / OWNED_MARKER).write_text("mvtec2coco output: `--overwrite` may replace this folder\n")
    except BaseException as exc:
        with signals_held():
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise translate_os_error(exc, tmp, out) from exc
        raise
    with signals_held():
        _swap(tmp, out)


def _swap(tmp: Path, out: Path) -> None:
    """Put ``tmp`` at ``out``; an old ``out`` goes aside first (marked, so a crash right here
    leaves a tree the next run recognises) and is deleted last."""
    old = None
    try:
        if out.exists():
            old = out.parent / _temp_name(out, OLD_TAG)
            os.rename(out, old)
            _mark(old, out)
        os.rename(tmp, out)
    except OSError as exc:
        if old is not None and not out.exists() and old.exists():
            os.rename(old, out)  # put the previous output back
            (out / STAGING_MARKER).unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise translate_os_error(exc, tmp, out) from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_file(path: Path, data: bytes | str, inputs: Sequence[Path] = ()) -> Path:
    """Write one output file (a report, a plot) atomically: beside it first, then renamed.

    ``path`` is checked like an output folder (never an input, never inside a dataset); a
    failure leaves neither the file nor a temporary one, and raises a typed error.
    """
    from .paths import check_output_file

    path = check_output_file(path, inputs)
    install_signal_handlers()
    tmp = path.parent / _temp_name(path, TMP_TAG)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException as exc:
        with signals_held():
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise translate_os_error(exc, tmp, path) from exc
        raise
    return path



@contextmanager
def run_folder(out: Path, inputs: Sequence[Path | None] = (), keep: Sequence[str] = (),
               fresh: bool = False) -> Iterator[Path]:
    """A run folder (training, prediction) that a failed command does not leave behind.

    ``out`` is checked against ``inputs`` first (never an input, nor inside or above one);
    ``fresh`` also refuses a folder that already holds files. If the command fails and ``out``
    did not exist before, it is removed again, unless it holds a file matching one of ``keep``
    (a checkpoint a later run can resume from).
    """
    from ..errors import OutputExistsError
    from .paths import check_inputs, resolve

    resolved = resolve(out)
    check_inputs(resolved, [p for p in inputs if p is not None])
    existed = resolved.exists()
    if fresh and existed and (not resolved.is_dir() or any(resolved.iterdir())):
        raise OutputExistsError("output folder already holds files", out, "pass another --out, or remove it first")
    install_signal_handlers()
    try:
        yield resolved
    except BaseException:
        if not existed and resolved.is_dir() and not any(next(resolved.rglob(p), None) for p in keep):
            with signals_held():
                shutil.rmtree(resolved, ignore_errors=True)
        raise
