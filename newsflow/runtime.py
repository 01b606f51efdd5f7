"""Process tuning for running flows from one command: Prefect's API, start-up readying, malloc, exit.

The CLI calls these around every command; the bench calls the same ones so that it measures
what a user runs. Import this module before anything heavy: skip_teardown_at_exit must be the
first exit handler registered.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext, suppress

from newsflow.errors import NewsflowError

# glibc malloc, tuned for a long import (docs/performance.md has the measurements):
# - allocations from 128 KB up (raw pages pass through every process) get their own mmap,
#   returned to the system on free. glibc otherwise raises that threshold to the biggest block
#   freed so far, after which pages land in the heap and the holes they leave stay resident.
# - two arenas, not eight per core: Prefect's and DuckDB's threads each kept their own.
MMAP_THRESHOLD = 128 * 1024
ARENA_MAX = 2
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt parameters, <malloc.h>

_exit_status: list[int] = []  # set by end_without_teardown: the status skip_teardown exits with
_held = ExitStack()  # settings that hold until the process ends (never closed: see use_local_api)


def skip_teardown() -> None:
    """The exit handler of skip_teardown_at_exit: os._exit once a command has finished."""
    if not _exit_status:
        return
    if "logging" in sys.modules:  # its own atexit flush was registered after this handler
        import logging

        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe: nothing left to write to
            stream.flush()
    os._exit(_exit_status[0])


def skip_teardown_at_exit() -> None:
    """End a finished command without the interpreter's teardown (freeing every module's objects).

    Call it before importing anything else: handlers run last-registered first, so this one
    runs after every other (Prefect's log and event flushes, its API server's stop). It only
    acts after end_without_teardown: a test importing the CLI, or a crash, ends normally.
    """
    atexit.register(skip_teardown)


def end_without_teardown(status: int) -> None:
    """Let skip_teardown end the process with this exit status."""
    _exit_status[:] = [status]


def set_prefect_defaults() -> None:
    """Prefect environment defaults of a command run (a user's own values win)."""
    # The ephemeral API is used unless PREFECT_API_URL points at a server; no usage analytics
    # unless the user asks for them.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect gives its ephemeral API 20 s to start, and a busy 2-core machine (a run overlapping
    # a scheduled one) has missed that: the run then died with a traceback before doing anything.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def tune_malloc() -> None:
    """Apply the malloc settings above to this process (mallopt) and its children (GLIBC_TUNABLES:
    Prefect's API server, the extraction pool); nothing on other C libraries, or when the user
    set GLIBC_TUNABLES."""
    if sys.platform != "linux" or "GLIBC_TUNABLES" in os.environ:
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (musl has mallopt too)
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(_M_ARENA_MAX, ARENA_MAX)
    os.environ["GLIBC_TUNABLES"] = (f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:"
                                    f"glibc.malloc.arena_max={ARENA_MAX}")


def ephemeral_settings() -> AbstractContextManager[object]:
    """No flow-run heartbeats when no Prefect server is configured.

    Heartbeats let a server spot crashed runs; the ephemeral API dies with this process, so
    nobody reads them, and each flow run would wait at exit for the heartbeat thread.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if PREFECT_API_URL.value():  # from the environment or the active Prefect profile
        return nullcontext()
    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def use_local_api(meanwhile: Callable[[], object] | None = None) -> None:
    """Run this process's flows against a temporary local API server (newsflow.local_api).

    Kept until the process ends: Prefect's log and event workers still talk to the API in
    their exit handlers. Children (Dask workers included) inherit the URL from the environment.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from newsflow import local_api

    url = local_api.start(meanwhile=meanwhile)
    os.environ["PREFECT_API_URL"] = url
    _held.enter_context(temporary_settings({PREFECT_API_URL: url}))


def warm_prefect() -> None:
    """Load ahead what Prefect imports on a process's first flow run with parameters.

    It serializes the run's parameters with FastAPI's jsonable_encoder, imported on first use:
    otherwise between the command's start and an import's first batch, on one core while the
    other idles.
    """
    importlib.import_module("fastapi.encoders")


def ready_extraction() -> None:
    """Put the fast trafilatura in place in this process (tasks.trafilatura_fast.install): the
    start-up step of the commands that extract, so the others never import trafilatura."""
    from tasks import trafilatura_fast

    trafilatura_fast.install()


def warm_import(workers: int | None) -> None:
    """Ready what an import needs before and after its pages while the local API starts (a core
    idles then): the fast trafilatura, the flow's modules, the dedupe's numpy and modules, and the
    extraction pool's forkserver (tasks.extract_pool.start_forkserver).

    Then the objects loaded so far (modules, Prefect, trafilatura) leave the garbage collector's
    view for good (gc.freeze): they live as long as the process, and each full collection would
    walk them all again.
    """
    from tasks.extract_pool import start_forkserver

    ready_extraction()
    for module in ("flows.import_warc", "flows.dedupe"):
        importlib.import_module(module)
    start_forkserver(workers)
    gc.collect()  # start-up's own garbage first: frozen, it would never be freed
    gc.freeze()


def check_db(db: str | None) -> None:
    """Open the database for writing once (a new one gets its schema): waits while another
    process holds the file, then raises DatabaseLockedError naming it."""
    from storage.db import db_path, writer
    from storage.memory import retry_out_of_memory

    # A unit of work: on a lake, its (empty) writer transaction may lose the commit race to
    # another process opening the same lake, and then runs again.
    @retry_out_of_memory("open the database")
    def open_once() -> None:
        with writer(db_path(db)):
            pass

    open_once()


def preflight(db: str | None, *, check_database: bool = True,
              warm: Callable[[], object] | None = None) -> None:
    """Fail before any flow starts, in one line, when the Prefect API or the database is unusable.

    Without PREFECT_API_URL a temporary local API is started (use_local_api). warm: start-up
    work the command needs anyway, done while that server starts.
    """
    import requests
    from prefect.settings import get_current_settings

    def ready() -> None:
        warm_prefect()
        if warm is not None:
            warm()

    # Without this check a dead PREFECT_API_URL surfaces as a long Prefect traceback.
    url = get_current_settings().api.url
    if not url:
        use_local_api(meanwhile=ready)
    else:
        ready()
        try:
            status = requests.get(url.rstrip("/") + "/health", timeout=5).status_code
        except requests.RequestException as exc:
            raise NewsflowError(
                f"PREFECT_API_URL={url}: no Prefect API answers there ({type(exc).__name__}). "
                "Start one (`prefect server start`) or unset PREFECT_API_URL to run with a "
                "temporary local API.") from None
        if status >= 500:
            raise NewsflowError(f"PREFECT_API_URL={url}: the Prefect API is unhealthy (HTTP {status})")
    if check_database:
        check_db(db)
