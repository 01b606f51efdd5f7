"""One writer by design: overlapping runs in two processes lose nothing; `newsflow sql` names the holder."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.deploy import ensure_limit
from storage.db import reader
from tasks.warc import WarcResponse, write_warc
from tests.conftest import recorded_pages

WHEN = datetime(2024, 3, 1, tzinfo=UTC)
# Imports first, then wait for the go line on stdin, so both runs really start together.
# workers=2, as the CLI runs on two cores: extraction in worker processes. With workers=1 it runs
# in several threads of the flow process, where lxml/trafilatura crashed natively (SIGSEGV) in
# about one run in five, in both variants (reported: tasks/extract.py).
RUN = ("import json, sys\nfrom flows.import_warc import import_warc\nprint('ready', flush=True)\n"
       "import time\nsys.stdin.readline()\nstart = time.time()\n"
       "stats = import_warc(paths=[sys.argv[1]], db=sys.argv[2], batch_size=2, workers=2, "
       "run_dedupe=False)\nstats['wall'] = [start, time.time()]\n"
       "print(json.dumps(stats, default=str))\n")
HOLD = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(float(sys.argv[2]))")


def warc(path: Path, host: str, copies: int = 1) -> int:
    """A WARC of the recorded pages under `host`; returns its record count."""
    recs = [WarcResponse(url=f"https://{host}/{k}/{Path(p.file).stem}", fetched_at=WHEN, status=200,
                         content_type="text/html", body=p.html())
            for k in range(copies) for p in recorded_pages()]
    write_warc(path, recs)
    return len(recs)


@pytest.fixture
def api_env(prefect_api: None) -> Iterator[dict[str, str]]:
    """Environment for child processes: the session's throwaway Prefect API."""
    import os

    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    assert url, "the test harness should provide an API URL"
    yield {**os.environ, "PREFECT_API_URL": url}


# Without the writer limit the two processes queue on storage.db's flock of `<db>.lock`, so DuckDB
# never sees them contend. The native crashes once blamed on that contention were lxml/trafilatura
# in threads (see RUN): their stacks show extraction, in this variant and the other.
@pytest.mark.slow
@pytest.mark.parametrize("limit", [True, False], ids=["writer-limit", "file-lock-retries"])
def test_two_overlapping_imports_both_complete_with_nothing_lost(
        tmp_path: Path, api_env: dict[str, str], limit: bool) -> None:
    db = tmp_path / "news.duckdb"
    # A native crash of a child (seen once as SIGSEGV / SIGABRT under load) then shows its stacks.
    env = {**api_env, "PYTHONFAULTHANDLER": "1"}
    if limit:  # as in the deployments: every write inside a strict global concurrency limit
        name = f"test-writer-{uuid.uuid4().hex[:8]}"
        asyncio.run(ensure_limit(name))
        env["NEWSFLOW_WRITER_LIMIT"] = name
    else:
        env.pop("NEWSFLOW_WRITER_LIMIT", None)
    files = [(tmp_path / f"{h}.warc.gz", h) for h in ("site-a.example", "site-b.example")]
    total = sum(warc(p, h) for p, h in files)
    procs = [subprocess.Popen([sys.executable, "-c", RUN, str(p), str(db)], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for p, _ in files]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_out, errs) in zip(procs, outs, strict=True):
        assert p.returncode == 0, _crash_report(errs)
    stats = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    with reader(db) as con:
        pages = con.execute("SELECT count(*) FROM raw_pages").fetchone()
        articles = con.execute("SELECT count(*) FROM article_records").fetchone()
        failures = con.execute("SELECT count(*) FROM failures").fetchone()
        runs = con.execute("SELECT status FROM runs").fetchall()
    assert pages == (total,)
    assert articles == (sum(s["new_articles"] for s in stats),)
    assert articles[0] + (failures[0] if failures else 0) == total
    assert runs == [("completed",), ("completed",)]
    (start_a, end_a), (start_b, end_b) = (s["wall"] for s in stats)
    assert start_a < end_b and start_b < end_a, "the runs did not overlap: the test proved nothing"


def test_sql_waits_then_names_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "60"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "newsflow", "sql", "SELECT 1", "--db", str(db)],
                              env={**_env(), "NEWSFLOW_DB_WAIT": "1.5"}, capture_output=True,
                              text=True, timeout=60, check=False)
        waited = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1
    assert "held by another process" in proc.stderr and f"PID {holder.pid}" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert waited >= 1.5


def test_sql_gets_through_once_the_holder_lets_go(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "2"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        proc = subprocess.run([sys.executable, "-m", "newsflow", "sql", "SELECT 42 AS answer",
                               "--db", str(db), "-f", "csv"],
                              env={**_env(), "NEWSFLOW_DB_WAIT": "30"}, capture_output=True,
                              text=True, timeout=60, check=False)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["answer", "42"]


def _crash_report(errs: str) -> str:
    """A child's stderr for the assertion: from the native crash's first stack when there is one."""
    at = errs.find("Fatal Python error")
    return errs[at:at + 6000] if at >= 0 else errs[-3000:]


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
