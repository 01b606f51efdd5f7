"""Where extraction runs: the local pool of worker processes, the Prefect task and task runners.

Settings: $NEWSFLOW_WORKERS (extraction processes; unset: one per core; 0 or 1: extract in the
flow's own process, no pool), $NEWSFLOW_TASK_RUNNER and $NEWSFLOW_DASK_ADDRESS (threads of the
flow process handing the work to the local pool, or Dask workers), read through
newsflow.settings.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from newsflow.settings import settings
from newsflow.types import Article, Failure, RawPage
from tasks import trafilatura_fast
from tasks.extract import extract_page, extract_pages

# Prefect is imported lazily (see __getattr__ below): the extraction worker processes import
# this module and never need it, and it would cost each of them memory (docs/performance.md).
if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

_POOL: ProcessPoolExecutor | None = None
_IN_PROCESS = threading.Lock()
# Pages per hand-over to a worker process: small enough to balance a batch across workers,
# big enough that the hand-over (pickling, a pipe round trip) stays a small part of the work.
POOL_CHUNK = 8


def default_workers() -> int:
    """Extraction processes: $NEWSFLOW_WORKERS (0 counts as 1: no pool), else one per core."""
    workers = settings().workers
    return workers if workers is not None else os.cpu_count() or 1


def dask_runner(address: str | None = None, workers: int | None = None) -> TaskRunner[Any]:
    """A prefect-dask DaskTaskRunner on an existing scheduler, or on a LocalCluster of processes."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    # One single-threaded process per core: trafilatura holds the GIL, threads would not help.
    n = workers or default_workers() or 1
    return DaskTaskRunner(cluster_kwargs={"n_workers": n, "threads_per_worker": 1, "processes": True})


def task_runner(threads: int = 4) -> TaskRunner[Any]:
    """The task runner the extracting flows use, as $NEWSFLOW_TASK_RUNNER / $NEWSFLOW_DASK_ADDRESS say."""
    from prefect.task_runners import ThreadPoolTaskRunner

    if runner_kind() == "dask":
        return dask_runner(settings().dask_address)
    return ThreadPoolTaskRunner(max_workers=threads)


def runner_kind() -> str:
    """"threads" or "dask" (a Dask scheduler address alone implies "dask": newsflow.settings)."""
    return settings().task_runner


def runs_in_process() -> bool:
    """Whether the running flow's tasks run in its own process, so extraction needs the local pool."""
    from prefect.context import FlowRunContext
    from prefect.task_runners import ThreadPoolTaskRunner

    ctx = FlowRunContext.get()
    return ctx is None or isinstance(ctx.task_runner, ThreadPoolTaskRunner)


def _start_worker() -> None:
    """Each pool process's initializer: the fast trafilatura, as the CLI has it (the flow's own
    process has already said, once, if this trafilatura is not covered)."""
    trafilatura_fast.install(quiet=True)


@contextmanager
def extraction_pool(workers: int | None = None) -> Iterator[None]:
    """Worker processes for extract_batch while the flow's own process does I/O and writes.

    Prefect tasks run in threads of the flow process and hand the CPU-bound work to this pool:
    a ProcessPoolTaskRunner would start one ephemeral Prefect API server per worker process
    when no server is configured. forkserver, not fork: the flow process has threads.
    """
    global _POOL
    n = default_workers() if workers is None else workers
    if n <= 1 or _POOL is not None:
        yield
        return
    _POOL = ProcessPoolExecutor(max_workers=n, mp_context=_forkserver(), initializer=_start_worker)
    try:
        yield
    finally:
        pool, _POOL = _POOL, None
        pool.shutdown(cancel_futures=True)


def _forkserver() -> multiprocessing.context.ForkServerContext:
    """The pool's process context: forked from a server that has imported this module."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tasks.extract_pool"])
    return ctx


def start_forkserver(workers: int | None = None) -> None:
    """Start the pool's forkserver ahead of the flow, when the flow will use the local pool.

    The server imports trafilatura and the rest of this module before it can fork a worker: the
    CLI has it done while it waits for its Prefect API to start, instead of on the flow's first
    batch.
    """
    n = default_workers() if workers is None else workers
    if n > 1 and runner_kind() == "threads":
        _forkserver()
        multiprocessing.forkserver.ensure_running()


def _extract_batch(pages: list[RawPage], label: str = "batch") -> list[Article | Failure]:
    """Prefect task: extract one batch of pages (one task per batch keeps Prefect overhead low).

    The batch is spread over all the pool's processes in small chunks, so a big batch (few task
    runs) still keeps every core busy, and the last batch of a run leaves no core idle for long.
    """
    # Once per process (then a no-op): a deployment's run or a Dask worker did not start from
    # the CLI, which installs it at start-up.
    trafilatura_fast.install()
    pool = _POOL
    if pool is None:
        # One batch at a time: trafilatura/lxml in several threads of one process crashed it
        # natively now and then (SIGSEGV, tests/orchestration/test_one_writer.py).
        with _IN_PROCESS:
            return extract_pages(pages)
    return list(pool.map(extract_page, pages, chunksize=POOL_CHUNK))


def __getattr__(name: str) -> Any:
    """`extract_batch`, the Prefect task of _extract_batch, made on first use (PEP 562)."""
    if name != "extract_batch":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    made = task(name="extract-batch", task_run_name="extract-{label}",
                cache_policy=NO_CACHE)(_extract_batch)
    globals()["extract_batch"] = made
    return made
