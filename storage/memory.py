"""DuckDB's memory caps per connection, and the retry of a unit of work that hits one (or, on a
lake, loses the commit race to another writer)."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import duckdb

from newsflow.errors import DatabaseMemoryError
from newsflow.settings import Settings, settings
from storage import lake

# DuckDB's buffer pool cap (its own default is 80% of RAM; beyond the cap it spills to disk).
# Writers get a small one: an import's writes checkpoint now and then, and a checkpoint
# rewrites the table's texts through the buffer pool, filling whatever it may, so a bigger cap
# only grows the flow process, in the same time (docs/performance.md). Readers (ad hoc SQL,
# dedupe's match) keep room for a query's work. The headroom of each cap over the worst work
# measured is in docs/integrity.md.
WRITER_MEMORY = "64MB"
READER_MEMORY = "128MB"
MEMORY_ENV = Settings.variables()["db_memory"]  # one cap for every connection, when set
# A unit of work that still runs out of memory is run once more with its caps this many times
# larger (retry_out_of_memory): slower and bigger for once, never a crash.
RETRY_FACTOR = 4
_UNITS = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20,
          "GIB": 2**30, "TIB": 2**40, "B": 1.0}
_retrying = threading.local()  # set while a unit of work runs its one retry
P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("newsflow.storage")


def _megabytes(limit: str) -> float | None:
    """A DuckDB size setting ('64MB', '1.5 GiB') in MB; None when it cannot be read."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", limit)
    if not m or (m[2] or "B").upper() not in _UNITS:
        return None
    try:
        return float(m[1]) * _UNITS[(m[2] or "B").upper()] / 1e6
    except ValueError:
        return None


def _boosted(limit: str) -> str:
    """limit, RETRY_FACTOR times larger while a retry runs (1GB where limit is unreadable)."""
    if not getattr(_retrying, "on", False):
        return limit
    mb = _megabytes(limit)
    return f"{int(mb * RETRY_FACTOR)}MB" if mb else "1GB"


def memory_limit(read_only: bool = False) -> str:
    """DuckDB's buffer pool cap for a connection: $NEWSFLOW_DB_MEMORY, else the default above."""
    return _boosted(settings().db_memory or (READER_MEMORY if read_only else WRITER_MEMORY))


def raise_memory(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    """Give an open connection's database a bigger buffer pool (for work that holds more than
    a writer's default at once), unless $NEWSFLOW_DB_MEMORY sets the cap."""
    # A lake cursor shares its process's instance, whose cap is set once (lake.LAKE_MEMORY).
    if not settings().db_memory and not lake.is_lake_con(con):
        con.execute(f"SET memory_limit = '{_boosted(limit)}'")


def retry_out_of_memory(operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a unit of work that opens its own connections (each writer is one transaction,
    rolled back on error): when DuckDB runs out of memory at its cap, log a warning naming the
    operation and run it once more with every cap RETRY_FACTOR times larger. On a lake, a
    unit whose commit another writer won also runs again (_rerun_on_conflict)."""
    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        fn = _rerun_on_conflict(operation, fn)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            if getattr(_retrying, "on", False):  # nested in a retry already: one retry only
                return fn(*args, **kwargs)
            try:
                return fn(*args, **kwargs)
            except duckdb.OutOfMemoryException as exc:
                _warn(f"{operation}: DuckDB ran out of memory at its cap "
                      f"({str(exc).splitlines()[0]}); retrying once with {RETRY_FACTOR}x the cap")
            _retrying.on = True
            try:
                return fn(*args, **kwargs)
            except duckdb.OutOfMemoryException as exc:
                raise DatabaseMemoryError(operation, memory_limit(), str(exc).splitlines()[0]
                                          ) from exc
            finally:
                _retrying.on = False
        return run
    return wrap


# A lake unit of work that lost the commit race this many times in a row gives up (raising
# LakeConflictError, which Prefect task retries treat as transient).
LAKE_ATTEMPTS = 12


def _rerun_on_conflict(operation: str, fn: Callable[P, R]) -> Callable[P, R]:
    """fn run again, with backoff, while its lake transaction loses the commit race to another
    writer (each writer is one transaction: nothing of a lost attempt stays)."""
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(LAKE_ATTEMPTS):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                # Only the lake writer's own error: the file's behaviour stays as it was.
                if not isinstance(exc, lake.LakeConflictError) or attempt == LAKE_ATTEMPTS - 1:
                    raise
                logger.info("%s: another lake writer committed first; running it again", operation)
                lake.backoff(attempt)
        raise AssertionError("unreachable")
    return run


def _warn(message: str) -> None:
    """A warning in the Prefect run's log when inside a run (the UI shows it), else stderr."""
    try:
        from prefect.logging import get_run_logger

        get_run_logger().warning(message)
    except Exception:  # no run context (plain calls, the CLI's sql), or no Prefect at all
        logger.warning(message)
