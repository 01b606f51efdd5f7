"""Prefect retries a task only when its error says a retry can help: a held database, not a bug."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
from prefect.client.orchestration import get_client
from prefect.states import State, get_state_exception

from newsflow.errors import DatabaseLockedError, DatabaseMemoryError, NewsflowError
from newsflow.types import Failure
from storage.db import reader, writer
from tasks.dedupe import prepare_batch, write_batch
from tasks.retry import retry_if_transient, retryable
from tasks.store import store_batch

pytestmark = pytest.mark.usefixtures("prefect_api")

# An outside DuckDB session holding the file (as the DuckDB CLI or a notebook would).
HOLD = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(60)")
FAILURE = Failure(url="https://kxan.com/a", source="kxan", stage="fetch", reason="http_503",
                  status=503, transient=True)


@contextmanager
def _held(db: Path) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield
    finally:
        proc.kill()
        proc.wait()


def _runs(state: State[Any]) -> int:
    """How many times Prefect ran the task run that ended in state."""
    with get_client(sync_client=True) as client:
        return client.read_task_run(state.state_details.task_run_id).run_count


def _db(tmp_path: Path) -> Path:
    db = tmp_path / "news.duckdb"
    with writer(db):
        pass
    return db


def test_the_writing_tasks_retry_only_transient_errors() -> None:
    for t in (store_batch, prepare_batch, write_batch):
        assert t.retries == 2 and t.retry_condition_fn is retry_if_transient, t.name


def test_a_held_database_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db(tmp_path)
    monkeypatch.setenv("NEWSFLOW_DB_WAIT", "0.2")
    quick = store_batch.with_options(retry_delay_seconds=0)
    with _held(db):
        state = quick(str(db), [], [FAILURE], True, return_state=True)
    assert state.is_failed() and isinstance(get_state_exception(state), DatabaseLockedError)
    assert _runs(state) == 3  # the first run and both retries
    state = quick(str(db), [], [FAILURE], True, return_state=True)  # released: it works
    assert state.is_completed() and _runs(state) == 1
    with reader(db) as con:
        assert con.execute("SELECT reason FROM failures").fetchall() == [("http_503",)]


def test_a_bug_is_not_retried(tmp_path: Path) -> None:
    db = _db(tmp_path)
    broken = Failure(url="https://kxan.com/b", source="kxan", stage="fetch", reason="http_404",
                     detail=None)  # type: ignore[arg-type]  # the bug: no detail to cut
    state = store_batch.with_options(retry_delay_seconds=0)(
        str(db), [], [broken], True, return_state=True)
    assert state.is_failed() and isinstance(get_state_exception(state), TypeError)
    assert _runs(state) == 1


def test_what_a_retry_can_help(tmp_path: Path) -> None:
    with pytest.raises(duckdb.IOException) as io_error:
        duckdb.connect(str(tmp_path / "no-such-folder" / "news.duckdb"))
    with pytest.raises(duckdb.CatalogException) as catalog, duckdb.connect() as con:
        con.execute("SELECT * FROM no_such_table")
    assert retryable(DatabaseLockedError("news.duckdb", "duckdb, PID 1", 0.2))
    assert retryable(io_error.value)
    assert not retryable(catalog.value)
    # Out of memory was retried once with larger caps already (storage.memory.retry_out_of_memory).
    assert not retryable(duckdb.OutOfMemoryException("could not allocate"))
    assert not retryable(DatabaseMemoryError("store", "64MB", "could not allocate"))
    assert not retryable(NewsflowError("a bad sources.toml"))
