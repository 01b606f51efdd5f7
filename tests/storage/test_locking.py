"""The single-writer lock: newsflow's processes and threads queue on `<db>.lock`; an outside
DuckDB session makes the writer wait, then fail with a clear message."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from newsflow.errors import DatabaseLockedError
from storage.db import connection, reader, writer

HOLD = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(float(sys.argv[2]))")
# Another newsflow process inside a writer (or reader) for a while.
HOLD_NEWSFLOW = ("import sys, time\nfrom storage.db import reader, writer\n"
                 "with (writer if sys.argv[3] == 'w' else reader)(sys.argv[1]) as c:\n"
                 "    c.execute('INSERT INTO t VALUES (9)') if sys.argv[3] == 'w' else None\n"
                 "    print('held', flush=True)\n    time.sleep(float(sys.argv[2]))\n")
# Only the sidecar flock, never DuckDB: whoever waits on it never got as far as DuckDB.
HOLD_FLOCK = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1] + '.lock', os.O_RDWR | os.O_CREAT); "
              "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(float(sys.argv[2]))")


def _start(code: str, *args: object) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@contextmanager
def _held(code: str, *args: object) -> Iterator[subprocess.Popen[str]]:
    """A process running code (which prints 'held' once it holds the lock), killed at the end."""
    proc = _start(code, *args)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _create(db: Path) -> None:
    with writer(db) as con:
        con.execute("CREATE TABLE t (x INTEGER)")


def test_writer_gives_up_with_the_holder_named(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    with _held(HOLD, db, 30) as proc:
        with pytest.raises(DatabaseLockedError) as info, connection(db, wait=0.5):
            pass
        assert f"PID {proc.pid}" in str(info.value)
        assert str(db) in str(info.value)


def test_writer_waits_for_the_lock_to_be_released(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    with _held(HOLD, db, 1.5):
        start = time.monotonic()
        with writer(db, wait=30) as con:
            assert con.execute("SELECT 1").fetchone() == (1,)
        assert time.monotonic() - start >= 0.5  # it really had to wait


def test_a_newsflow_writer_queues_on_the_sidecar_lock_and_names_its_holder(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    with _held(HOLD_FLOCK, db, 30) as proc:
        with pytest.raises(DatabaseLockedError) as info, writer(db, wait=0.5):
            pass
        assert f"PID {proc.pid}" in str(info.value) and str(db) in str(info.value)
        assert not db.exists(), "the writer reached DuckDB while the flock was held"


def test_readers_of_two_processes_share_and_a_writer_waits_for_both(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    _create(db)
    with _held(HOLD_NEWSFLOW, db, 1.5, "r"):
        start = time.monotonic()
        with reader(db, wait=0.5) as con:  # shared with the other process's reader: no wait
            assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
        assert time.monotonic() - start < 0.5
        with writer(db, wait=30) as con:
            con.execute("INSERT INTO t VALUES (1)")
        assert time.monotonic() - start >= 0.5  # it queued behind the reader


def test_a_killed_holder_releases_the_lock_at_once(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    _create(db)
    proc = _start(HOLD_NEWSFLOW, db, 60, "w")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    start = time.monotonic()
    with writer(db, wait=10) as con:  # its insert died uncommitted with it
        assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert time.monotonic() - start < 5


def test_threads_of_one_process_serialise_a_writer_and_a_reader(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    _create(db)
    inside = threading.Event()
    seen: list[object] = []

    def write() -> None:
        with writer(db) as con:
            con.execute("INSERT INTO t VALUES (1)")
            inside.set()
            time.sleep(0.5)

    t = threading.Thread(target=write)
    t.start()
    assert inside.wait(10)
    # Without the process-local lock this is DuckDB's "different configuration" error, at once.
    with reader(db, wait=10) as con:
        seen.append(con.execute("SELECT count(*) FROM t").fetchone())
    t.join()
    assert seen == [(1,)]


def test_reader_threads_share_and_nested_opens_do_not_deadlock(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    _create(db)
    both = threading.Barrier(2, timeout=5)  # both threads inside a reader at the same time
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with reader(db, wait=5) as con:
                both.wait()
                with reader(db, wait=1) as inner:  # nested in one thread
                    inner.execute("SELECT 1")
                con.execute("SELECT count(*) FROM t")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with writer(db, wait=1) as con, writer(db, wait=1) as inner:  # nested writers too
        inner.execute("INSERT INTO t VALUES (2)")
        con.execute("INSERT INTO t VALUES (3)")
    with reader(db) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (2,)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def test_a_forked_child_does_not_keep_the_parents_lock(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    _create(db)
    child = None
    try:
        with writer(db):
            child = multiprocessing.get_context("fork").Process(target=_sleep, args=(30,))
            child.start()
        # The parent is done; the child, forked with the descriptor open, must not hold it.
        fd = os.open(f"{db}.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        if child is not None:
            child.kill()
            child.join()


def test_no_lock_file_possible_falls_back_to_duckdbs_lock(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    _create(db)
    (tmp_path / "news.duckdb.lock").unlink()
    # A dangling link into a missing folder: the lock file can be neither created nor opened,
    # as in a read-only directory (which root, running these tests in CI, could still write).
    (tmp_path / "news.duckdb.lock").symlink_to(tmp_path / "missing" / "x.lock")
    with reader(db) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
    with _held(HOLD, db, 30) as proc:
        with pytest.raises(DatabaseLockedError) as info, writer(db, wait=0.5):
            pass
        assert f"PID {proc.pid}" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_still_reads(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "news.duckdb"
    _create(db)
    (folder / "news.duckdb.lock").unlink()
    folder.chmod(0o555)
    try:
        with reader(db) as con:
            assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
    finally:
        folder.chmod(0o755)
