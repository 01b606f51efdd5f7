"""Short-lived DuckDB connections: one writer at a time, retried while another process holds the file."""

from __future__ import annotations

import importlib.util
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from newsflow.errors import DatabaseLockedError, InputFileError
from storage.schema import MIGRATIONS

# DuckDB's Python client tries `import pandas` for every Python value it converts (lists bound
# as parameters, registered arrays). Without pandas installed each failed import walks sys.path:
# 125,000 attempts cost 6 of the 10 s of deduping 240 articles. A None entry in sys.modules
# makes the same import fail at once, which changes nothing else when pandas is absent.
if importlib.util.find_spec("pandas") is None:
    sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]

DEFAULT_DB = "news.duckdb"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<prog>\S+)(?: \(PID (?P<pid>\d+)\))?")


def db_path(explicit: str | Path | None = None) -> Path:
    """The database file: --db, else $NEWSFLOW_DB, else news.duckdb in the working directory."""
    return Path(explicit or os.environ.get("NEWSFLOW_DB") or DEFAULT_DB)


def memory_limit() -> str:
    """DuckDB's buffer pool cap: $NEWSFLOW_DB_MEMORY, else 512MB (DuckDB's own default is 80% of
    RAM, which a long import fills with cached pages; beyond the cap DuckDB spills to disk)."""
    return os.environ.get("NEWSFLOW_DB_MEMORY", "512MB")


def _is_lock_error(exc: Exception) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def lock_holder(exc: Exception) -> str:
    """Who holds the file, as DuckDB's lock error names it (program and PID)."""
    m = _LOCK_HOLDER.search(str(exc))
    if not m:
        return "another process"
    return f"{Path(m['prog']).name}, PID {m['pid']}" if m["pid"] else m["prog"]


def open_connection(path: str | Path, *, read_only: bool = False,
                    wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open path, retrying with jittered backoff for up to `wait` seconds while it is locked."""
    path = Path(path)
    if read_only and not path.exists():
        raise InputFileError(str(path), "no such database (run `newsflow demo` or an import first)")
    if wait is None:
        wait = float(os.environ.get("NEWSFLOW_DB_WAIT", "10" if read_only else "60"))
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only,
                                  config={"memory_limit": memory_limit()})
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseLockedError(str(path), lock_holder(exc), wait) from exc
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())) * random.uniform(0.5, 1.0))
            delay = min(delay * 2, 2.0)


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations this database lacks; returns the versions applied."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for m in sorted(MIGRATIONS, key=lambda m: m.version):
        if m.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(m.sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        [m.version, m.name, datetime.now(UTC)])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(m.version)
    return applied


@contextmanager
def writer(path: str | Path, *, wait: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A migrated read-write connection whose work is one transaction; closed on exit."""
    con = open_connection(path, wait=wait)
    try:
        migrate(con)
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()


@contextmanager
def reader(path: str | Path, *, wait: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed on exit so it never blocks the writer for long."""
    con = open_connection(path, read_only=True, wait=wait)
    try:
        yield con
    finally:
        con.close()
