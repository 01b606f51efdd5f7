"""The single-writer lock: a held file makes the writer wait, then fail with a clear message."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsflow.errors import DatabaseLockedError
from storage.db import open_connection, writer

HOLD = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(float(sys.argv[2]))")


def _hold(db: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_writer_gives_up_with_the_holder_named(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    proc = _hold(db, 30)
    try:
        with pytest.raises(DatabaseLockedError) as info:
            open_connection(db, wait=0.5)
        assert f"PID {proc.pid}" in str(info.value)
        assert str(db) in str(info.value)
    finally:
        proc.kill()
        proc.wait()


def test_writer_waits_for_the_lock_to_be_released(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    proc = _hold(db, 1.5)
    start = time.monotonic()
    try:
        with writer(db, wait=30) as con:
            assert con.execute("SELECT 1").fetchone() == (1,)
        assert time.monotonic() - start >= 0.5  # it really had to wait
    finally:
        proc.kill()
        proc.wait()
