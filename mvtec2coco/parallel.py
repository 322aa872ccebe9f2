"""Map a function over items in worker processes, in order, with an optional rich progress bar."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MIN_ITEMS_FOR_POOL = 16


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
            pool = ProcessPoolExecutor(workers, initializer=initializer)
            size = chunksize or max(1, min(32, len(items) // (workers * 8)))
            results = pool.map(fn, items, chunksize=size)
        else:
            if initializer is not None:
                initializer()
            results = map(fn, items)
        if description is None:
            yield from results
        else:
            yield from _with_progress(results, sizes or [1] * len(items), description)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _with_progress(results: Iterable[R], sizes: list[int], description: str) -> Iterator[R]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=sum(sizes))
        for result, size in zip(results, sizes):
            progress.advance(task, size)
            yield result
