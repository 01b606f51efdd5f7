"""Short-lived DuckDB connections: one writer at a time, queued on a sidecar flock across newsflow's
processes and retried while an outside session holds the file."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import re
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from newsflow.errors import DatabaseLockedError, InputFileError
from newsflow.settings import settings
from storage import lake
from storage.filelock import Held, lock_for
from storage.memory import LAKE_ATTEMPTS, memory_limit, retry_out_of_memory
from storage.schema import MIGRATIONS, lake_sql

# DuckDB's Python client tries `import pandas` for every Python value it converts (lists bound
# as parameters, registered arrays). Without pandas installed each failed import walks sys.path,
# most of a dedupe's time (docs/performance.md). A None entry in sys.modules makes the same
# import fail at once, which changes nothing else when pandas is absent.
if importlib.util.find_spec("pandas") is None:
    sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]

DEFAULT_DB = "news.duckdb"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<prog>\S+)(?: \(PID (?P<pid>\d+)\))?")


def db_path(explicit: str | Path | None = None) -> Path | str:
    """The database: --db, else $NEWSFLOW_DB, else news.duckdb in the working directory.

    Absolute: the path travels into flow parameters, events and deployments, whose runs work in
    other folders (a worker runs in the checkout), and must name the same file there. A
    `ducklake:` URL is returned as a string (its local catalog file made absolute).
    """
    db = str(explicit or settings().db or DEFAULT_DB)
    if lake.is_lake(db):
        return lake.normalise(db)
    return Path(db).resolve()


def db_exists(db: Path | str) -> bool:
    """Whether the database is there to read: the file exists; a lake catalog is always taken
    to be (attaching creates it, empty)."""
    return lake.is_lake(db) or Path(db).is_file()


def data_path() -> str | None:
    """Where a new DuckLake catalog puts its Parquet files: $NEWSFLOW_DATA_PATH (--data-path)."""
    path = settings().data_path
    return str(path) if path else None


def _is_lock_error(exc: Exception) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def transient_db_error(exc: BaseException) -> bool:
    """Whether running the work again may succeed: the file held by another process, I/O, or
    another lake writer committing first.

    Out of memory is not one: retry_out_of_memory has already run the work with larger caps.
    """
    return isinstance(exc, DatabaseLockedError | duckdb.IOException | lake.LakeConflictError)


def lock_holder(exc: Exception) -> str:
    """Who holds the file, as DuckDB's lock error names it (program and PID)."""
    m = _LOCK_HOLDER.search(str(exc))
    if not m:
        return "another process"
    return f"{Path(m['prog']).name}, PID {m['pid']}" if m["pid"] else m["prog"]




@contextmanager
def connection(path: str | Path, *, read_only: bool = False,
               wait: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to path, closed on exit, opened under newsflow's own lock on `<db>.lock`.

    DuckDB's own file lock only makes a second process's open fail, and under that contention a
    child process has crashed natively now and then (SIGSEGV, duckdb 1.5.6 too). So newsflow's
    processes queue on an flock first (exclusive for writers, shared for readers, held while the
    connection is open) and DuckDB only ever sees contention from outside sessions (its CLI, a
    user's Python), which the retry loop covers. Both waits share one deadline: `wait` seconds,
    else $NEWSFLOW_DB_WAIT, else 10 s for readers and 60 s for writers. The kernel drops the
    flock when its process dies, SIGKILL included.
    """
    if lake.is_lake(path):  # no file lock: DuckLake's snapshots and the commit token instead
        with lake.cursor(str(path), data_path(), settings().db_memory) as cur:
            if not read_only:
                yield cur
                return
            # A reader sees one snapshot, and whatever ad hoc SQL it runs is rolled back: a
            # lake has no read-only open like the file's.
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            finally:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
        return
    path = Path(path)
    if read_only and not path.exists():
        raise InputFileError(str(path), "no such database (run `newsflow demo` or an import first)")
    if wait is None:
        wait = settings().db_wait
    if wait is None:
        wait = 10.0 if read_only else 60.0
    deadline = time.monotonic() + wait
    lock = lock_for(path)
    try:
        me = lock.acquire(not read_only, deadline)
    except Held as held:
        raise DatabaseLockedError(str(path), held.holder, wait) from None
    try:
        con = _connect(path, read_only, wait, deadline)
        try:
            yield con
        finally:
            con.close()
    finally:
        lock.release(me)


def _connect(path: Path, read_only: bool, wait: float, deadline: float) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, retried with jittered backoff until deadline while another process holds it."""
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only,
                                  config={"memory_limit": memory_limit(read_only)})
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseLockedError(str(path), lock_holder(exc), wait) from exc
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())) * random.uniform(0.5, 1.0))
            delay = min(delay * 2, 2.0)


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations this database lacks; returns the versions applied."""
    on_lake = lake.is_lake_con(con)
    ddl = lake_sql if on_lake else (lambda sql: sql)
    if on_lake:  # first: every migration transaction below updates the token
        lake.create_token(con)
    con.execute(ddl("CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                    "applied_at TIMESTAMPTZ NOT NULL)"))
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for m in sorted(MIGRATIONS, key=lambda m: m.version):
        if m.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            # On a lake, another process may have applied it since `done` was read: look again
            # in this transaction's snapshot; and two migrating at once conflict on the token.
            if on_lake and _applied_meanwhile(con, m.version):
                con.execute("ROLLBACK")
                continue
            con.execute(ddl(m.sql))
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        [m.version, m.name, datetime.now(UTC)])
            con.execute("COMMIT")
        except Exception:
            if on_lake:  # a COMMIT that lost a race on the lake leaves no transaction open
                with contextlib.suppress(duckdb.TransactionException):
                    con.execute("ROLLBACK")
            else:
                con.execute("ROLLBACK")
            raise
        applied.append(m.version)
    return applied


def _applied_meanwhile(con: duckdb.DuckDBPyConnection, version: int) -> bool:
    """Whether version is recorded in this transaction's snapshot (the token touched too)."""
    lake.token_update(con)
    row = con.execute("SELECT count(*) FROM schema_migrations WHERE version = ?",
                      [version]).fetchone()
    return bool(row and row[0])


_migrated: set[tuple[int, str]] = set()  # (pid, lake URL) this process has migrated


def _migrate_lake(con: duckdb.DuckDBPyConnection, url: str) -> None:
    """migrate() once per process and lake; processes migrating at once conflict on the DDL,
    and the loser reads the versions again and finds them done."""
    key = (os.getpid(), url)
    if key in _migrated:
        return
    for attempt in range(LAKE_ATTEMPTS):
        try:
            migrate(con)
            break
        except duckdb.Error as exc:
            racing = (lake.is_conflict(exc) or "already exists" in str(exc)
                      or isinstance(exc, duckdb.CatalogException))
            if attempt == LAKE_ATTEMPTS - 1 or not racing:
                raise
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            lake.backoff(attempt)
    _migrated.add(key)


@contextmanager
def writer(path: str | Path, *, wait: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A migrated read-write connection whose work is one transaction; closed on exit.

    On a lake the transaction also updates the commit token, so two writers whose transactions
    overlap conflict at COMMIT: the later one raises LakeConflictError and its unit of work runs
    again (retry_out_of_memory's wrapper, or the Prefect task's retries).
    """
    if lake.is_lake(path):
        with connection(path) as con:
            _migrate_lake(con, str(path))
            con.execute("BEGIN TRANSACTION")
            try:
                lake.token_update(con)
                yield con
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            try:
                con.execute("COMMIT")
            except duckdb.Error as exc:
                if lake.is_conflict(exc):  # after a failed COMMIT no transaction is left open
                    raise lake.LakeConflictError(str(exc).splitlines()[0]) from exc
                raise
        return
    with connection(path, wait=wait) as con:
        migrate(con)
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


@contextmanager
def reader(path: str | Path, *, wait: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed on exit so it never blocks the writer for long."""
    with connection(path, read_only=True, wait=wait) as con:
        yield con


# A lease whose holder died on another machine frees itself after this long; on the holder's
# own machine a dead PID frees it at once.
LEASE_TTL = 3600.0


def _alive_here(holder: str) -> bool:
    """Whether a lease holder (host:pid) may still run: a live PID, or another machine's."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def exclusive(db: str | Path, name: str, *, wait: float = LEASE_TTL) -> Iterator[None]:
    """Run the block alone among newsflow's processes on every machine writing this lake (a
    lease row, taken and dropped in writer transactions). A DuckDB file needs nothing: its
    writers already take turns."""
    if not lake.is_lake(db):
        yield
        return
    me = f"{socket.gethostname()}:{os.getpid()}"
    deadline = time.monotonic() + wait
    attempt = 0

    @retry_out_of_memory(f"take the {name} lease")
    def take() -> bool:
        with writer(db) as con:
            held = lake.lease_holder(con, name)
            if held and held[0] != me and not held[1] and _alive_here(held[0]):
                return False
            lake.take_lease(con, name, me, LEASE_TTL)
            return True

    while not take():
        if time.monotonic() >= deadline:
            raise lake.LakeConflictError(f"the {name} lease stayed held for {wait:.0f}s")
        lake.backoff(min(attempt, 4))
        attempt += 1
    try:
        yield
    finally:
        @retry_out_of_memory(f"drop the {name} lease")
        def drop() -> None:
            with writer(db) as con:
                lake.drop_lease(con, name, me)
        drop()
