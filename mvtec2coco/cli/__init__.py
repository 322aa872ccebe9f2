"""Command line: parse, call the library, render with rich. Errors become one line and exit 2.

``mvtec2coco synth|summary|convert|verify|validate|preview`` work on datasets and conversions;
``mvtec2coco <family> train|eval|predict`` on models, for the families ``classifier``,
``patchcore``, ``autoencoder``, ``yolo-world`` and ``sam``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import typer

from ..errors import Mvtec2CocoError
from . import anomalib, autoencoder, classifier, dataset, patchcore, sam, weights, yolo_world  # noqa: F401 - dataset registers its commands
from .base import STATE, app, err_console

app.add_typer(classifier.app, name="classifier")
app.add_typer(patchcore.app, name="patchcore")
app.add_typer(autoencoder.app, name="autoencoder")
app.add_typer(anomalib.app, name="anomalib")
app.add_typer(yolo_world.app, name="yolo-world")
app.add_typer(sam.app, name="sam")
app.add_typer(weights.app, name="weights")


def main() -> None:
    """Console entry point: a user mistake prints one line and exits with code 2.

    Bad options and arguments (click's errors), our typed errors and unexpected ``OSError`` s
    all become one line on stderr, with no traceback unless ``--debug`` is given. Ctrl-C,
    SIGTERM and SIGHUP stop the command after its clean-up, with 128 + the signal's number.
    """
    import click

    from ..runtime.staging import Interrupted, install_signal_handlers, on_notice, translate_os_error

    # typer ships its own copy of click: its errors and click's are caught alike
    click_errors = tuple({click.ClickException, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")})
    aborts = tuple({click.exceptions.Abort, typer.Abort})
    install_signal_handlers(ctrl_c=True)
    from rich.console import Console

    Console.on_broken_pipe = _stdout_closed  # rich's own hook; its default exits 1 without a word
    on_notice(lambda text: err_console.print(f"notice: {text}", markup=False, soft_wrap=True))
    try:
        code = app(standalone_mode=False)
    except Interrupted as exc:
        _fail(f"interrupted by {exc}: nothing was written", 128 + exc.signum)
    except (KeyboardInterrupt, *aborts):
        _fail("interrupted: nothing was written", 130)
    except click_errors as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            sys.exit(exc.exit_code)
        if STATE["debug"]:
            raise
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        _fail(f"{exc.format_message()}{where}".replace("\n", " "), exc.exit_code)
    except Mvtec2CocoError as exc:
        if STATE["debug"]:
            raise
        _fail(str(exc), 2)
    except BrokenPipeError:
        _stdout_closed()
    except SystemExit as exc:  # click turns a broken pipe into exit 1: found by its context
        if isinstance(exc.__context__, BrokenPipeError):
            _stdout_closed()
        raise
    except OSError as exc:  # an I/O failure no library code expected: still one line
        if STATE["debug"]:
            raise
        _fail(str(translate_os_error(exc, None, Path("."))), 2)
    except Exception as exc:  # a signal inside a class body or import comes back wrapped, e.g. in a RuntimeError
        signal_cause = _interruption(exc, Interrupted)
        if signal_cause is None:
            raise
        _fail(f"interrupted by {signal_cause}: nothing was written", 128 + signal_cause.signum)
    sys.exit(code if isinstance(code, int) else 0)


def run() -> NoReturn:
    """The ``mvtec2coco`` program: ``main``, then an exit that skips the interpreter's teardown.

    Once the command is done, nothing the teardown does matters to the user, and with torch
    imported it takes about 0.3 s (measured here after importing ultralytics: 0.30 s from the last
    statement to the process's end, 0.02 s with this exit). Everything a normal exit does that
    can matter still runs, in its order: non-daemon threads are joined, ``atexit`` handlers run
    (temporary folders, multiprocessing), stdout and stderr are flushed. An error that ``main``
    does not handle leaves as usual, with its traceback."""
    import atexit
    import os
    import threading

    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int):  # sys.exit("text"), as the interpreter shows it
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or a closed stream: nothing left to say
            pass
    os._exit(code or 0)


def _stdout_closed(*_console) -> NoReturn:
    """The reader of stdout went away (``| head``): stop quietly, as the writer in a shell
    pipeline does (128 + SIGPIPE), with stdout pointed at /dev/null so that the last flush cannot
    fail again. What the command wrote to files is complete by then."""
    import os
    import signal

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise SystemExit(128 + signal.SIGPIPE)


def _interruption(exc: BaseException, kind: type) -> BaseException | None:
    """The ``kind`` exception among the causes and contexts of ``exc``, or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _fail(text: str, code: int) -> None:
    err_console.print(f"error: {text}", markup=False, soft_wrap=True)
    sys.exit(code)


