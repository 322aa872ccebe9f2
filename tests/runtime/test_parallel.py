"""fork_map and pmap: same results as a plain map, errors raised where the caller can see them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from mvtec2coco.errors import BrokenFileError
from mvtec2coco.runtime.parallel import WorkerError, fork_map, pmap

ITEMS = list(range(200))


def _square_with_pid(k: int) -> tuple[int, int]:
    time.sleep(0.002)  # long enough for both workers to take items
    return k * k, os.getpid()


def _fail_at_17(k: int) -> int:
    if k == 17:
        raise BrokenFileError("cannot decode", Path(f"/data/{k}.png"), "copy it again")
    return k


MAIN = os.getpid()


def _fail_in_a_worker(k: int) -> int:
    time.sleep(0.002)
    if k >= 17 and os.getpid() != MAIN:
        raise BrokenFileError("cannot decode", Path("/data/17.png"), "copy it again")
    return k


def _die_at_5(k: int) -> int:
    time.sleep(0.002)
    if k >= 5 and os.getpid() != MAIN:
        os.kill(os.getpid(), signal.SIGKILL)
    return k


def _slow(k: int) -> int:
    time.sleep(0.002)
    return k


@pytest.mark.parametrize("workers", [2, 3])
def test_fork_map_equals_map_and_takes_items_here_beside_the_forked_workers(workers):
    results = fork_map(_square_with_pid, ITEMS, workers=workers)
    assert [r for r, _ in results] == [k * k for k in ITEMS]
    pids = {pid for _, pid in results}
    assert os.getpid() in pids and len(pids) == workers  # workers - 1 forked, and this process


def _when_with_pid(k: int) -> tuple[float, int]:
    time.sleep(0.002)
    return time.monotonic(), os.getpid()


def test_fork_map_takes_items_here_once_meanwhile_is_done():
    """Beside a long ``meanwhile`` one forked worker takes the first items; this process joins it
    when ``meanwhile`` ends, so the cores are never more than shared."""
    ended = []

    def meanwhile() -> None:
        time.sleep(0.1)
        ended.append(time.monotonic())

    results = fork_map(_when_with_pid, ITEMS, workers=2, meanwhile=meanwhile)
    here = [when for when, pid in results if pid == os.getpid()]
    there = [k for k, (_, pid) in enumerate(results) if pid != os.getpid()]
    assert here and min(here) >= ended[0]
    assert there[0] == 0 and len(set(pid for _, pid in results)) == 2


def test_an_error_of_an_item_here_is_raised_as_it_is_and_the_workers_are_stopped():
    before = _children()
    here = os.getpid()

    def fail_here(k: int) -> int:
        if os.getpid() == here:
            raise BrokenFileError("cannot decode", Path(f"/data/{k}.png"))
        time.sleep(0.002)
        return k

    with pytest.raises(BrokenFileError) as err:
        fork_map(fail_here, ITEMS, workers=2)
    assert err.value.__cause__ is None  # not a worker's traceback: it happened here
    assert _children() == before


def test_fork_map_runs_the_initializer_in_every_process_that_takes_items():
    import multiprocessing

    ran = multiprocessing.RawArray("q", 1)

    def count() -> None:
        ran[0] += 1  # each process adds once; the forked ones write to the shared array too

    fork_map(_slow, ITEMS, workers=3, initializer=count)
    assert ran[0] == 3


def test_fork_map_runs_small_inputs_here():
    results = fork_map(_square_with_pid, ITEMS[:3], workers=2)
    assert results == [(k * k, os.getpid()) for k in ITEMS[:3]]
    assert list(pmap(_square_with_pid, ITEMS[:3], workers=2)) == results


def test_fork_map_raises_the_workers_typed_error_with_its_traceback():
    with pytest.raises(BrokenFileError) as err:
        fork_map(_fail_in_a_worker, ITEMS, workers=2)
    assert err.value.path == Path("/data/17.png") and err.value.hint == "copy it again"
    assert isinstance(err.value.__cause__, WorkerError) and "_fail_in_a_worker" in str(err.value.__cause__)


def test_fork_map_notices_a_worker_that_died():
    with pytest.raises(RuntimeError, match="died before it sent all its results"):
        fork_map(_die_at_5, ITEMS, workers=2)


class _DeathWhileLocked(int):
    """A weight whose addition, which a forked worker makes while it holds the shared lock, kills
    that worker there: as the OOM killer might."""

    def __radd__(self, other: int) -> int:
        if os.getpid() != MAIN:
            os.kill(os.getpid(), signal.SIGKILL)
        return int(other) + int(self)


def test_fork_map_notices_a_worker_killed_while_it_held_the_lock():
    def too_long(*_args) -> None:
        raise TimeoutError("fork_map hangs on the lock the dead worker held")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(20)
    try:
        with pytest.raises(RuntimeError, match="died before it sent all its results"):
            fork_map(_slow, ITEMS[:40], workers=2, sizes=[_DeathWhileLocked(1)] * 40)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _frozen(_k: int) -> int:
    import gc

    return gc.get_freeze_count()


def test_fork_map_workers_skip_the_objects_that_existed_at_the_fork():
    """The cyclic collector of the workers (and of this process while they run) does not walk the
    objects inherited with the fork; afterwards this process's collector is as it was."""
    import gc

    assert gc.get_freeze_count() == 0
    frozen = fork_map(_frozen, ITEMS, workers=2)
    assert min(frozen) > 1000  # the interpreter, pytest and this package, at least
    assert gc.get_freeze_count() == 0
    made: list = []
    after = fork_map(_frozen, ITEMS, workers=2, meanwhile=lambda: made.extend([] for _ in range(5000)))
    assert max(after) >= min(frozen) + 5000  # this process's items skip what meanwhile made, too
    assert gc.get_freeze_count() == 0
    with pytest.raises(BrokenFileError):
        fork_map(_fail_at_17, ITEMS, workers=2)
    assert gc.get_freeze_count() == 0


def _collector_on(_k: int) -> tuple[int, bool]:
    import gc

    time.sleep(0.005)  # long enough for both processes to take items
    return os.getpid(), gc.isenabled()


def test_fork_map_pauses_the_cyclic_collector_in_every_process_that_takes_items():
    """Off in the forked workers and in this process while the items run, on again after, also
    when an item fails; and in the one-process path too."""
    import gc

    seen = fork_map(_collector_on, ITEMS, workers=2, meanwhile=lambda: seen_meanwhile.append(gc.isenabled()))
    assert len({pid for pid, _ in seen}) == 2 and not any(on for _, on in seen)
    assert seen_meanwhile == [False] and gc.isenabled()
    assert not any(on for _, on in fork_map(_collector_on, ITEMS[:3], workers=1)) and gc.isenabled()
    with pytest.raises(BrokenFileError):
        fork_map(_fail_at_17, ITEMS, workers=2)
    assert gc.isenabled()


seen_meanwhile: list[bool] = []


def test_fork_map_runs_meanwhile_here_while_workers_work():
    seen = []
    results = fork_map(_slow, ITEMS, workers=2, meanwhile=lambda: seen.append(os.getpid()))
    assert results == ITEMS and seen == [os.getpid()]


def test_an_error_meanwhile_stops_the_workers():
    def fail() -> None:
        raise OSError("disk full")

    before = _children()
    with pytest.raises(OSError, match="disk full"):
        fork_map(_slow, ITEMS, workers=2, meanwhile=fail)
    assert _children() == before  # every worker was stopped and reaped


def _children() -> set[int]:
    """Pids of this process's children, zombies included (Linux)."""
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    return set(map(int, path.read_text().split())) if path.exists() else set()


def test_off_linux_fork_map_is_a_process_pool(monkeypatch):
    import mvtec2coco.runtime.parallel as parallel

    monkeypatch.setattr(parallel.sys, "platform", "darwin")
    seen = []
    results = fork_map(_square_with_pid, ITEMS, workers=2, meanwhile=lambda: seen.append(1))
    assert [r for r, _ in results] == [k * k for k in ITEMS] and seen == [1]
    assert os.getpid() not in {pid for _, pid in results}



def test_conversion_forks_safely_after_opencv_used_its_threads(tiny_mvtec, tmp_path):
    """Workers forked from a process whose OpenCV thread pool is running must not hang."""
    import subprocess
    import sys

    script = f"""
import cv2, numpy as np
cv2.setNumThreads(2)
cv2.GaussianBlur(np.zeros((2000, 2000), np.uint8), (31, 31), 0)  # starts OpenCV's thread pool
from mvtec2coco.convert import ConvertOptions, convert, parse_formats
from mvtec2coco.datasets import load_dataset
from mvtec2coco.verify import verify
convert(load_dataset({str(tiny_mvtec)!r}), {str(tmp_path / 'out')!r}, ConvertOptions(formats=parse_formats("all"), workers=2))
assert cv2.getNumThreads() == 2  # restored once the workers are done
result = verify({str(tmp_path / "out")!r}, workers=2)
assert result["passed"], result
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


TAKEN_IN: list[float] = []  # when this process unpickled each worker result
MAIN_STARTS: list[float] = []  # when this process started each of its own items


class _Stamp:
    """A result that notes when the main process unpickles it."""

    def __init__(self, k: int):
        self.k = k

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        TAKEN_IN.append(time.monotonic())


def _stamped(k: int) -> _Stamp:
    if os.getpid() == MAIN:
        MAIN_STARTS.append(time.monotonic())
    time.sleep(0.01)
    return _Stamp(k)


def test_fork_map_takes_in_worker_results_while_it_works():
    """A forked worker sends its results as it goes, so that little is left to unpickle at the
    end: some arrive before this process starts its own last item."""
    TAKEN_IN.clear()
    MAIN_STARTS.clear()
    results = fork_map(_stamped, ITEMS[:60], workers=2)
    assert [r.k for r in results] == ITEMS[:60]
    assert TAKEN_IN and MAIN_STARTS and min(TAKEN_IN) < max(MAIN_STARTS)


def _big(k: int) -> tuple[float, bytes]:
    return time.monotonic(), bytes([k % 256]) * 200_000


def test_a_full_pipe_never_stalls_a_worker():
    """While this process is busy (``meanwhile``) a worker's results outgrow any pipe buffer
    (40 MB): the worker still finishes every item it takes meanwhile, and every byte arrives."""
    stop: list[float] = []
    results = fork_map(_big, list(range(200)), workers=2, meanwhile=lambda: (time.sleep(1.0), stop.append(time.monotonic())))
    assert [payload for _, payload in results] == [bytes([k % 256]) * 200_000 for k in range(200)]
    assert max(t for t, _ in results) < stop[0]  # the worker took all 200 during the second of meanwhile


def _die_late(k: int) -> int:
    time.sleep(0.002)
    if k >= 120 and os.getpid() != MAIN:
        os.kill(os.getpid(), signal.SIGKILL)
    return k


def test_a_worker_that_dies_after_sending_some_results_is_an_error():
    """Batches already taken in do not make a dead worker's missing results look complete."""
    with pytest.raises(RuntimeError, match="died before it sent all its results"):
        fork_map(_die_late, ITEMS, workers=2)


_SIGNAL_IN_FORK_HOOK = """
import os, signal, sys
from pathlib import Path
from mvtec2coco.runtime.staging import Interrupted, install_signal_handlers
install_signal_handlers()
fired = []

def stop_during_fork():  # a SIGTERM that lands while os.fork runs its hooks in the parent
    if not fired:
        fired.append(1)
        os.kill(os.getpid(), signal.SIGTERM)

os.register_at_fork(after_in_parent=stop_during_fork)
try:
    if sys.argv[1] == "pmap":
        from mvtec2coco.runtime.parallel import pmap
        list(pmap(abs, list(range(-400, 0)), workers=2))
    else:
        from mvtec2coco.synth import generate
        generate(Path(sys.argv[2]), "tiny", workers=2)
except Interrupted:
    print("interrupted")
    sys.exit(3)
print("finished")
"""


@pytest.mark.parametrize("where", ["pmap", "synth"])
def test_a_stop_signal_while_a_pool_forks_still_stops_the_run(where, tmp_path):
    """A SIGTERM arriving inside os.fork's after-fork hooks is not dropped: the run stops (the
    synthetic dataset is not written) instead of finishing as if never told to."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _SIGNAL_IN_FORK_HOOK, where, str(tmp_path / "ds")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and done.stdout.strip() == "interrupted", done.stdout + done.stderr
    assert "Exception ignored" not in done.stderr
    assert not (tmp_path / "ds").exists() and list(tmp_path.iterdir()) == []
