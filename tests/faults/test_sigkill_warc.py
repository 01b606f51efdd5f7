"""A WARC spread over ~190 hosts with a matching 190-source registry: import, SIGKILL mid-import,
rerun. Nothing lost, nothing duplicated (the hostile battery's kill-and-rerun phase, at the scale
of registry that once crashed the import)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from flows.import_warc import import_warc
from newsflow.errors import NewsflowError
from storage.db import reader
from tasks.warc import WarcResponse, write_warc
from tests.hardening.site import article_html, end_marker, query

HOSTS = 190
PER_HOST = 1
KILL_AT = 30  # raw pages stored when the import is killed (of HOSTS * PER_HOST)
# The import, each batch stored after a short pause (between transactions), so that the kill
# lands mid-import however fast or loaded the machine is.
SCRIPT = ("import sys, time\nimport flows.import_warc as f\n"
          "store = f.store_results\n"
          "def slow(*a, **k):\n    time.sleep(0.2)\n    return store(*a, **k)\n"
          "f.store_results = slow\n"
          "f.import_warc(paths=[sys.argv[1]], sources_file=sys.argv[2], db=sys.argv[3], "
          "batch_size=5, workers=1, run_dedupe=False)\n")
WHEN = datetime(2024, 5, 1, tzinfo=UTC)


def _url(i: int) -> str:
    return f"https://www.host{i % HOSTS:03d}.example/news/2024/05/story-{i:04d}/"


def _fixtures(tmp_path: Path) -> tuple[Path, Path]:
    warc, reg = tmp_path / "hosts.warc.gz", tmp_path / "sources.toml"
    write_warc(warc, [WarcResponse(url=_url(i), fetched_at=WHEN, status=200,
                                   content_type="text/html", body=article_html(i))
                      for i in range(HOSTS * PER_HOST)])
    reg.write_text("".join(
        f'[[sources]]\nname = "host{h:03d}"\npublisher = "Publisher {h}"\nkind = "original"\n'
        f'domains = ["host{h:03d}.example"]\nfeeds = ["https://host{h:03d}.example/feed/"]\n\n'
        for h in range(HOSTS)))
    return warc, reg


def _stored(db: str) -> int:
    try:
        with reader(db, wait=0.5) as con:
            return int(con.execute("SELECT count(*) FROM raw_pages").fetchone()[0])  # type: ignore[index]
    except (NewsflowError, duckdb.Error, OSError):  # not created yet, or busy: poll on
        return 0


def _check(db: str, why: str) -> int:
    """No duplicate, no article without its raw page or cut short; the article count."""
    rows = query(db, "SELECT a.url, a.source, a.text, r.url IS NOT NULL FROM article_records a "
                     "LEFT JOIN raw_pages r USING (url)")
    urls = [r[0] for r in rows]
    assert len(urls) == len(set(urls)), f"duplicate articles {why}"
    index = {_url(i): i for i in range(HOSTS * PER_HOST)}
    for url, source, text, has_raw in rows:
        assert has_raw, f"article without its raw page {url} {why}"
        assert end_marker(index[url]) in text, f"half-written article {url} {why}"
        assert source == f"host{index[url] % HOSTS:03d}", f"wrong source of {url} {why}"
    n_raw, n_distinct = query(db, "SELECT count(*), count(DISTINCT url) FROM raw_pages")[0]
    assert n_raw == n_distinct, f"duplicate raw pages {why}"
    return len(urls)


def test_kill_mid_import_then_rerun_with_190_sources(tmp_path: Path,
                                                     subprocess_env: dict[str, str]) -> None:
    warc, reg = _fixtures(tmp_path)
    db = str(tmp_path / "news.duckdb")
    total = HOSTS * PER_HOST
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(warc), str(reg), db],
                            env=subprocess_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while _stored(db) < KILL_AT and proc.poll() is None:
            assert time.monotonic() < deadline, "the import never got going"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the import ended before the kill: {err[-2000:]}"
    at_kill = _check(db, "after the kill")
    assert 0 < at_kill < total, f"the kill did not land mid-import ({at_kill} of {total})"
    assert query(db, "SELECT count(*) FROM sources")[0][0] == HOSTS

    stats = import_warc(paths=[str(warc)], sources_file=str(reg), db=db, workers=1,
                        run_dedupe=False)
    assert _check(db, "after the rerun") == total
    assert stats["new_articles"] == total - at_kill
    assert stats["skipped_known"] == at_kill
    assert query(db, "SELECT count(*) FROM failures")[0][0] == 0
    assert query(db, "SELECT status FROM runs") == [("completed",)]  # the same run id, finished
