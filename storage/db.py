"""Short-lived DuckDB connections: one writer at a time, queued on a sidecar flock across newsflow's
processes and retried while an outside session holds the file."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import logging
import os
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

import duckdb

from newsflow.errors import DatabaseLockedError, DatabaseMemoryError, InputFileError
from newsflow.settings import Settings, settings
from storage import lake
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


class _Held(Exception):
    """The sidecar lock stayed taken until the deadline; holder names who has it."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


class _FileLock:
    """One process's hold on a `<db>.lock` sidecar: an fcntl.flock shared by its threads.

    flock belongs to an open file description, so two threads opening the file separately would
    block each other like two processes, and a thread re-entering (a reader inside a reader)
    would deadlock itself. So the process takes the OS lock once and counts its holders: threads
    share it when both read; a writer waits for the process's other threads to finish, which also
    spares DuckDB's in-process error for a read-only and a read-write connection at once.
    """

    def __init__(self, path: str):
        self.path = path
        self.cond = threading.Condition()
        self.holders: dict[int, int] = {}  # thread id -> nesting depth
        self.exclusive = False
        self.busy = False  # a thread is taking the OS lock for the process: the others wait
        self.fd: int | None = None

    def acquire(self, exclusive: bool, deadline: float) -> int:
        """Hold the lock for the calling thread; returns its id for release()."""
        me = threading.get_ident()
        with self.cond:
            while True:
                if me in self.holders:  # nested in this thread: already held; DuckDB decides
                    self.holders[me] += 1
                    return me
                if self.holders and not exclusive and not self.exclusive:
                    self.holders[me] = 1  # readers of one process share its shared lock
                    return me
                if not self.holders and not self.busy:
                    self.busy = True
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Held(f"another thread of this process, PID {os.getpid()}")
                self.cond.wait(min(left, 0.05))
        try:
            fd = _flock(self.path, exclusive, deadline)
        except BaseException:
            with self.cond:
                self.busy = False
                self.cond.notify_all()
            raise
        with self.cond:
            self.busy = False
            self.fd, self.exclusive, self.holders[me] = fd, exclusive, 1
            self.cond.notify_all()
        return me

    def release(self, me: int) -> None:
        """Drop the calling thread's hold; the last one out closes the file (unlocking it)."""
        with self.cond:
            self.holders[me] -= 1
            if self.holders[me]:
                return
            del self.holders[me]
            if not self.holders:
                if self.fd is not None:
                    os.close(self.fd)  # closing the last descriptor releases the flock
                self.fd, self.exclusive = None, False
                self.cond.notify_all()


def _open_lock_file(path: str) -> int | None:
    """The sidecar's descriptor; None where it can neither be created nor opened."""
    try:  # 0o666 less the umask, as DuckDB creates the database file itself
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        pass
    try:  # flock needs no write access: a lock file made by another user still works
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        # A read-only directory (a shipped database, a read-only mount) and no lock file: go
        # without the flock. Such a file has no newsflow writer; DuckDB's own lock and the retry
        # loop still cover outside sessions.
        return None


def _flock(path: str, exclusive: bool, deadline: float) -> int | None:
    """Take flock on path (polled: a blocking flock cannot time out); the open descriptor."""
    fd = _open_lock_file(path)
    if fd is None:
        return None
    op = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, op)
            return fd
        except BlockingIOError:
            pass
        except OSError:  # ENOLCK and kin (some network filesystems): no flock, as above
            os.close(fd)
            return None
        if time.monotonic() >= deadline:
            holder = flock_holder(fd)
            os.close(fd)
            raise _Held(holder)
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())) * random.uniform(0.5, 1.0))
        delay = min(delay * 2, 0.25)


def flock_holder(fd: int) -> str:
    """Who holds the flock on fd's file: the PID /proc/locks records (Linux), and its name."""
    st = os.fstat(fd)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another newsflow process"
    for line in lines:
        parts = line.split()
        if "FLOCK" in parts and "->" not in parts and dev in parts:
            pid = parts[parts.index(dev) - 1]
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                name = "newsflow"
            return f"{name}, PID {pid}"
    return "another newsflow process"


_LOCKS: dict[str, _FileLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(db: Path) -> _FileLock:
    key = os.path.realpath(f"{db}.lock")  # two spellings of one file share one lock
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, _FileLock(key))


def _forget_locks_in_child() -> None:
    """After a fork: the child holds none of its parent's locks.

    Closing the inherited descriptors drops the child's references without unlocking (the lock
    belongs to the open file description, which the parent still has); LOCK_UN here would
    unlock the parent. Fresh objects too: another thread may have held a Condition at the fork.
    """
    global _LOCKS_GUARD
    for lock in _LOCKS.values():
        if lock.fd is not None:
            with contextlib.suppress(OSError):
                os.close(lock.fd)
    _LOCKS.clear()
    _LOCKS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_locks_in_child)


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
    lock = _lock_for(path)
    try:
        me = lock.acquire(not read_only, deadline)
    except _Held as held:
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
