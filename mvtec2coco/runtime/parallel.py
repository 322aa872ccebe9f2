"""Map a function over items in worker processes, in order, with an optional rich progress bar.

``pmap`` is the general tool (a process pool fed item by item). ``fork_map`` is for the hot
paths, conversion and verification: forked workers inherit the items instead of receiving them
and send their results back once each, and the main process takes items beside them.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import selectors
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import NoReturn, TypeVar

from .collector import cyclic_gc_paused
from .staging import reset_signals_in_child

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

T = TypeVar("T")
R = TypeVar("R")

MIN_ITEMS_FOR_POOL = 16
LOCK_WAIT = 0.05  # seconds this process waits for the shared lock before it reads the workers' pipes
SEND_EVERY = 0.02  # seconds of results a forked worker gathers before it sends them
PIPE_SIZE = 1 << 20  # bytes a worker's pipe holds (Linux's default limit for a process)


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def pmap(
    fn: Callable[[T], R],
    items: list[T],
    workers: int | None = None,
    description: str | None = None,
    chunksize: int | None = None,
    initializer: Callable[[], object] | None = None,
    sizes: list[int] | None = None,
) -> Iterator[R]:
    """Yield ``fn(item)`` for each item, in input order, spread over ``workers`` processes.

    Small inputs and ``workers == 1`` run in this process (no start-up cost, easier debugging).
    ``description`` shows a progress bar on stderr. ``initializer`` runs once in every worker
    process, or once here when the items are mapped in this process. ``sizes`` (one per item)
    makes the bar count what the items hold, e.g. the images of each chunk.
    """
    workers = workers or default_workers()
    results: Iterable[R]
    pool = None
    try:
        if workers > 1 and len(items) > 1 and (sum(sizes) if sizes else len(items)) >= MIN_ITEMS_FOR_POOL:
            pool = ProcessPoolExecutor(workers, initializer=init_worker, initargs=(initializer,))
            size = chunksize or max(1, min(32, len(items) // (workers * 8)))
            with stop_signals_deferred():  # the pool forks its workers here
                results = pool.map(fn, items, chunksize=size)
        else:
            if initializer is not None:
                initializer()
            results = map(fn, items)
        if description is None:
            yield from results
        else:
            yield from with_progress(results, sizes or [1] * len(items), description)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


@contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back while a process pool forks its workers (they arrive
    when the block ends). One arriving during ``os.fork`` runs its handler inside the fork's
    after-fork hooks (logging's lock release among them), where the interpreter prints the
    exception and drops it: the run would go on as if never stopped. The workers start with
    the signals held too; ``init_worker`` lets them through once their default actions are back."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no fork, no hooks
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def init_worker(initializer: Callable[[], object] | None = None) -> None:
    """First thing in a pool's worker process: default signal actions (the main process cleans
    up), the stop signals let through (``stop_signals_deferred``), then the caller's
    ``initializer``."""
    reset_signals_in_child()
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a pending one now ends the worker
    if initializer is not None:
        initializer()


def with_progress(results: Iterable[R], sizes: list[int], description: str) -> Iterator[R]:
    """Yield ``results`` while a bar counts ``sizes`` (one per result) up to their sum."""
    with _Bar(description, sum(sizes)) as bar:
        done = 0
        for result, size in zip(results, sizes):
            done += size
            bar.update(done)
            yield result


class WorkerError(Exception):
    """The traceback of an error raised in a ``fork_map`` worker (the cause of the re-raised error)."""


def fork_map(
    fn: Callable[[T], R],
    items: list[T],
    workers: int | None = None,
    description: str | None = None,
    sizes: list[int] | None = None,
    initializer: Callable[[], object] | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]``, computed by ``workers`` processes: ``workers - 1`` forked
    ones and this one.

    The forked workers inherit ``items`` with the fork and every process takes the next index
    from a shared counter, so work starts in the order of ``items`` (put the heaviest first) and
    nothing is pickled on the way in; each forked worker sends its results in batches of about
    ``SEND_EVERY`` seconds of work, which this process takes in between its own items, so that
    little is left to unpickle once the last item is done. With a process pool, the per-item
    messages cost the main process about a tenth of a CPU-second on the full synthetic MVTec AD,
    time taken from the two workers of a 2-core machine.

    ``meanwhile`` runs here after the fork, while the workers work, and this process then takes
    items too: ``workers`` processes share the cores all along, whatever ``meanwhile`` costs (verify
    imports torch there: two forked workers beside it would leave a core idle once they were done
    and it was not). Forking while a thread of this process runs is unsafe, so side work belongs
    in ``meanwhile`` rather than in a thread. The first error of a worker (or of ``meanwhile``, or
    of an item here, or Ctrl-C) stops the others and is raised here, once no worker is left that
    could still write. ``initializer`` runs once in every process that takes items, this one
    included.

    The objects that exist at the fork, and those ``meanwhile`` made, are frozen (``gc.freeze``)
    until the workers are done: the cyclic garbage collector of the workers and of this process
    then skips them. With torch imported (by ultralytics, for verify) that is some 350,000
    objects, which each full collection would walk: unpickling the workers' results here would
    take 17 times as long, and the walks would write to pages the workers share with this process.

    Besides, the cyclic collector is off until the results are in (``cyclic_gc_paused``), here and
    in the workers: the items and their results make many objects and no cycles.

    Off Linux (no fork on Windows, an unsafe one on macOS) it is ``pmap`` after ``meanwhile``,
    which also runs one worker or few items here.
    """
    with cyclic_gc_paused():
        return _fork_map(fn, items, workers, description, sizes, initializer, meanwhile)


def _fork_map(fn: Callable[[T], R], items: list[T], workers: int | None, description: str | None,
              sizes: list[int] | None, initializer: Callable[[], object] | None,
              meanwhile: Callable[[], object] | None) -> list[R]:
    workers = workers or default_workers()
    weights = sizes or [1] * len(items)
    if not sys.platform.startswith("linux") or workers < 2 or len(items) < 2 or sum(weights) < MIN_ITEMS_FOR_POOL:
        if meanwhile is not None:
            meanwhile()
        return list(pmap(fn, items, workers, description, chunksize=1, initializer=initializer, sizes=sizes))
    shared = multiprocessing.RawArray("q", 2)  # [next item to take, weight of the items done]
    lock = multiprocessing.Lock()
    children: dict[int, int] = {}  # read end of a worker's pipe -> its pid
    gc.freeze()  # see the docstring
    try:
        for _ in range(min(workers, len(items)) - 1):
            read, write = os.pipe()
            # Stop signals wait while forking: one arriving in the child before its handlers are
            # reset would run the parent's handler inside os.fork's own after-fork hooks.
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                pid = os.fork()
            except OSError:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                os.close(read)
                os.close(write)
                raise
            if pid == 0:
                reset_signals_in_child()
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a pending one now ends the worker
                os.close(read)
                for other in children:
                    os.close(other)
                _work(fn, items, weights, shared, lock, initializer, write)
            children[read] = pid  # known before a pending signal can raise: the clean-up below stops it
            os.close(write)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a pending one now reaches the handler
        if meanwhile is not None:
            meanwhile()
            gc.freeze()  # what it made, too (see the docstring)
        return _Gather(children, len(items), shared, sum(weights), description).run(fn, items, weights, lock,
                                                                                    initializer)
    finally:
        gc.unfreeze()
        for read, pid in children.items():  # only workers still running on an error are left here
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):  # reaped by ``_Gather._read`` a moment ago
                pass
            os.close(read)


def _work(fn: Callable, items: list, weights: list[int], shared, lock, initializer: Callable[[], object] | None,
          pipe: int) -> NoReturn:
    """A forked worker's life: take items until none is left, sending the results as it goes
    (``_Outbox``), exit."""
    code = 1
    try:
        reset_signals_in_child()  # Ctrl-C, SIGTERM, SIGHUP: the main process cleans up, workers just stop
        outbox = _Outbox(pipe)
        try:
            if initializer is not None:
                initializer()
            done = {}
            last = time.monotonic()
            while True:
                with lock:
                    k = shared[0]
                    shared[0] = k + 1
                if k >= len(items):
                    break
                done[k] = fn(items[k])
                with lock:
                    shared[1] += weights[k]
                if time.monotonic() - last >= SEND_EVERY:
                    outbox.send((None, None, done, False))
                    done, last = {}, time.monotonic()
            message = (None, None, done, True)
        except Exception as exc:  # noqa: BLE001 - every error goes back to the main process
            message = _error_message(exc)
        outbox.send(message, last=True)  # the last message: it tells the main process all has come
        code = 0
    finally:
        os._exit(code)  # never return into the parent's code


class _Outbox:
    """A worker's side of its pipe: length-prefixed pickles, written without ever blocking until
    the last one (the main process may be busy with its own item, or with ``meanwhile``, for a
    while: a full pipe must not stall the worker), then all of it."""

    def __init__(self, pipe: int):
        import fcntl  # forked workers run on Linux only

        self.pipe, self.pending = pipe, bytearray()
        try:  # room for many messages between two reads of the main process
            fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except (AttributeError, OSError):  # not Linux, or above this system's limit: the default size
            pass
        os.set_blocking(pipe, False)

    def send(self, message: tuple, last: bool = False) -> None:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        self.pending += len(data).to_bytes(8, "little")
        self.pending += data
        if last:
            os.set_blocking(self.pipe, True)
        while self.pending:
            try:
                written = os.write(self.pipe, self.pending)
            except BlockingIOError:
                return  # sent with the next message, or the last one
            del self.pending[:written]


def _error_message(exc: Exception) -> tuple:
    """A worker's last message for an error: ``(error, its traceback text, None, True)``, with a
    ``RuntimeError`` naming the error when the error itself cannot be pickled."""
    text = "".join(traceback.format_exception(exc))
    try:
        pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
        return exc, text, None, True
    except Exception:  # noqa: BLE001 - an error that cannot be pickled still gets reported
        return RuntimeError(f"{type(exc).__name__}: {exc}"), text, None, True


class _Gather:
    """This process's share of a ``fork_map``: take items until none is left, reading the forked
    workers' results as they arrive in between (a worker's first error is raised at once), then
    wait for the rest."""

    def __init__(self, children: dict[int, int], n: int, shared, total: int, description: str | None):
        self.children, self.shared, self.total, self.description = children, shared, total, description
        self.results: list = [None] * n
        self.received = 0
        self.pieces: dict[int, bytearray] = {read: bytearray() for read in children}  # unread bytes
        self.ended: dict[int, bool] = {read: False for read in children}  # its last message came

    def run(self, fn: Callable, items: list, weights: list[int], lock, initializer: Callable[[], object] | None) -> list:
        shared, n = self.shared, len(self.results)
        with selectors.DefaultSelector() as selector, _Bar(self.description, self.total) as bar:
            for read in self.children:
                selector.register(read, selectors.EVENT_READ)
            if initializer is not None:
                initializer()
            while True:
                k = self._add(lock, selector, 0, 1)  # the next item to take
                if k >= n:
                    break
                self.results[k] = fn(items[k])
                self.received += 1
                self._add(lock, selector, 1, weights[k])  # the weight done, for the bar
                self._read(selector, 0)
                bar.update(shared[1])
            while self.children:
                self._read(selector, 0.1 if bar.shown else None)
                bar.update(shared[1])
        if self.received != n:
            raise RuntimeError(f"workers returned {self.received} of {n} results")
        return self.results

    def _add(self, lock, selector: selectors.BaseSelector, slot: int, value: int) -> int:
        """Add ``value`` to the shared counter ``slot`` under the lock; returns the old value. The
        pipes are read while the lock is held elsewhere: a worker killed while holding it (the OOM
        killer, say) never releases it, and its closed pipe is how this process learns of that
        death and raises."""
        while not lock.acquire(timeout=LOCK_WAIT):
            self._read(selector, 0)
        try:
            old = self.shared[slot]
            self.shared[slot] = old + value
            return old
        finally:
            lock.release()

    def _read(self, selector: selectors.BaseSelector, timeout: float | None) -> None:
        """Read what the workers have sent within ``timeout`` seconds; take in the results of
        every whole message, or raise a worker's error; reap each worker whose pipe closed."""
        for key, _ in selector.select(timeout=timeout):
            data = os.read(key.fd, 1 << 20)
            if data:
                self._take(key.fd, data)
                continue
            selector.unregister(key.fd)
            _, status = os.waitpid(self.children[key.fd], 0)  # reaped, then forgotten, then closed: a
            del self.children[key.fd]  # signal in between leaves ``fork_map``'s clean-up nothing it cannot undo
            os.close(key.fd)
            self.pieces.pop(key.fd)
            if not self.ended.pop(key.fd):
                _raise_if_stopped(status)
                raise RuntimeError(f"a worker process died before it sent all its results (wait status {status})")

    def _take(self, fd: int, data: bytes) -> None:
        """Add ``data`` to the worker's unread bytes and take in every whole message there; its
        last one ends it (``_Outbox``)."""
        buffer = self.pieces[fd]
        buffer += data
        start = 0
        while len(buffer) - start >= 8:
            size = int.from_bytes(buffer[start : start + 8], "little")
            if len(buffer) - start - 8 < size:
                break
            try:
                error, text, done, last = pickle.loads(buffer[start + 8 : start + 8 + size])
            except (pickle.UnpicklingError, EOFError, ValueError) as exc:
                raise RuntimeError("a worker process sent a broken message") from exc
            start += 8 + size
            if error is not None:
                raise error from WorkerError(text)
            for k, result in done.items():
                self.results[k] = result
            self.received += len(done)
            self.ended[fd] = last
        del buffer[:start]
def _raise_if_stopped(status: int) -> None:
    """A worker ended by SIGTERM, SIGHUP or SIGINT: the whole process group is being stopped (the
    signal may reach this process a moment after the worker's death does), so stop the way the
    signal handler does, with ``Interrupted``, and every clean-up runs."""
    from .staging import Interrupted

    if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        raise Interrupted(os.WTERMSIG(status))


class _Bar:
    """A rich progress bar on stderr when ``description`` is set and stderr is a terminal, else
    nothing: into a pipe or a log, a transient bar cannot be erased and leaves an empty line before
    whatever follows (an error's one line, say)."""

    def __init__(self, description: str | None, total: int):
        self.description, self.total, self.shown = description, total, description is not None
        self._progress = None

    def __enter__(self) -> _Bar:
        if self.shown:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(stderr=True)
            if not console.is_terminal:
                self.shown = False
                return self
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self._progress = Progress(*columns, console=console, transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def update(self, completed: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
