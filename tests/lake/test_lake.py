"""newsflow on DuckLake with a PostgreSQL catalog: the demo's views equal the file's, two
importers at once store every page once, a SIGKILLed writer loses nothing committed, and two
writers of one key end with one row."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import string
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flows.import_warc import import_warc
from storage import lake, writes
from storage.db import reader, writer
from storage.memory import retry_out_of_memory
from storage.schema import latest_version
from tasks.warc import WarcResponse, write_warc

pytestmark = pytest.mark.slow
WHEN = datetime(2024, 5, 1, tzinfo=UTC)
VIEWS = {  # every column but the times a run stamps (extracted_at and kin differ by run)
    "articles": "SELECT * EXCLUDE (text) FROM articles ORDER BY article_id",
    "stories": "SELECT * FROM stories ORDER BY story_id",
    "story_members": "SELECT * FROM story_members ORDER BY story_id, article_id",
    "source_health": "SELECT * FROM source_health ORDER BY source",
    "texts": "SELECT article_id, md5(text) FROM articles ORDER BY article_id",
}


def newsflow(*args: str, env: dict[str, str], timeout: float = 300
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsflow", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def rows(db: str, sql: str) -> list[tuple[Any, ...]]:
    with reader(db) as con:
        return con.execute(sql).fetchall()


def test_demo_views_equal_the_file(lake_db: str, lake_env: dict[str, str], tmp_path: Path) -> None:
    file_db = str(tmp_path / "demo.duckdb")
    for db in (file_db, lake_db):
        r = newsflow("demo", "--db", db, env=lake_env)
        assert r.returncode == 0, r.stderr[-3000:]
    for name, sql in VIEWS.items():
        on_file, on_lake = rows(file_db, sql), rows(lake_db, sql)
        assert on_file, f"{name}: the demo stored nothing"
        assert on_lake == on_file, f"{name} differs on the lake"
    assert rows(lake_db, "SELECT count(*) FROM stories WHERE member_count > 1")[0][0] > 0
    # The CLI's ad hoc SQL answers the same on both.
    q = "SELECT source, count(*) AS n FROM articles GROUP BY ALL ORDER BY n DESC, source"
    outs = [newsflow("sql", q, "--db", db, "-f", "csv", env=lake_env) for db in (file_db, lake_db)]
    assert outs[0].returncode == 0 and outs[1].returncode == 0, outs[1].stderr[-2000:]
    assert outs[0].stdout == outs[1].stdout
    # A second demo on the lake adds nothing: writes stay idempotent without unique keys.
    again = newsflow("demo", "--db", lake_db, env=lake_env)
    assert again.returncode == 0, again.stderr[-3000:]
    for name, sql in VIEWS.items():
        assert rows(lake_db, sql) == rows(file_db, sql), f"{name} changed on a re-import"


def article_html(i: int) -> bytes:
    """A news page whose text shares nothing with another i (made-up words, seeded by i)."""
    rng = random.Random(i)
    paras = ["<p>" + " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(7))
                              for _ in range(45)) + ".</p>" for _ in range(4)]
    return (f"<!doctype html><html lang=en><head><title>Story {i}</title></head><body>"
            f"<article><h1>Story number {i}</h1>{''.join(paras)}</article></body></html>").encode()


def _url(host: str, i: int) -> str:
    return f"https://www.{host}.example/news/2024/05/story-{i:04d}/"


def _warcs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two WARCs on disjoint URLs whose pages 20-39 tell the same stories (copies across the
    two importers), and a registry of both hosts."""
    a, b, reg = tmp_path / "a.warc.gz", tmp_path / "b.warc.gz", tmp_path / "sources.toml"
    write_warc(a, [WarcResponse(url=_url("alpha", i), fetched_at=WHEN, status=200,
                                content_type="text/html", body=article_html(i)) for i in range(40)])
    write_warc(b, [WarcResponse(url=_url("beta", i), fetched_at=WHEN.replace(hour=3), status=200,
                                content_type="text/html", body=article_html(i))
                   for i in range(20, 60)])
    reg.write_text("".join(
        f'[[sources]]\nname = "{h}"\npublisher = "Publisher {h}"\nkind = "{k}"\n'
        f'domains = ["{h}.example"]\nfeeds = ["https://{h}.example/feed/"]\n\n'
        for h, k in (("alpha", "original"), ("beta", "aggregator"))))
    return a, b, reg


def _groups(db: str) -> set[frozenset[str]]:
    """The stories as sets of member URLs (story ids aside)."""
    by_story: dict[str, set[str]] = {}
    for story, url in rows(db, "SELECT story_id, url FROM story_members"):
        by_story.setdefault(story, set()).add(url)
    return {frozenset(v) for v in by_story.values()}


def test_two_importers_at_once_store_everything_once(lake_db: str, lake_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    a, b, reg = _warcs(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-m", "newsflow", "import-warc", str(w), "--db",
                               lake_db, "--sources", str(reg), "--workers", "1"],
                              env=lake_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for w in (a, b)]
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "Traceback" not in err and "locked" not in err.lower(), err[-3000:]
    for table, key in (("raw_pages", "url"), ("article_records", "url"),
                       ("dedupe_articles", "article_id"), ("story_membership", "article_id")):
        n, distinct = rows(lake_db, f"SELECT count(*), count(DISTINCT {key}) FROM {table}")[0]
        assert n == distinct == 80, f"{table}: {n} rows, {distinct} distinct"
    assert rows(lake_db, "SELECT count(*) FROM sources")[0][0] == 2
    # The stories: as one importer of both WARCs on a file forms them.
    file_db = str(tmp_path / "both.duckdb")
    r = newsflow("import-warc", str(a), str(b), "--db", file_db, "--sources", str(reg),
                 "--workers", "1", env=lake_env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _groups(lake_db) == _groups(file_db)
    assert sum(len(g) == 2 for g in _groups(lake_db)) == 20
    assert rows(lake_db, "SELECT count(*) FROM stories")[0][0] == 60


KILL_SCRIPT = ("import sys, time\nimport flows.import_warc as f\n"
               "store = f.store_results\n"
               "def slow(*a, **k):\n    time.sleep(0.3)\n    return store(*a, **k)\n"
               "f.store_results = slow\n"
               "f.import_warc(paths=[sys.argv[1]], sources_file=sys.argv[2], db=sys.argv[3], "
               "batch_size=5, workers=1, run_dedupe=False)\n")


def _stored(db: str) -> int:
    try:
        return int(rows(db, "SELECT count(*) FROM raw_pages")[0][0])
    except Exception:  # not created yet: poll on
        return 0


def test_sigkilled_writer_loses_nothing_committed(lake_db: str, lake_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    a, _, reg = _warcs(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(a), str(reg), lake_db],
                            env=lake_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _stored(lake_db) < 10 and proc.poll() is None:
            assert time.monotonic() < deadline, "the import never got going"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the import ended before the kill: {err[-2000:]}"
    at_kill = _stored(lake_db)
    assert 0 < at_kill < 40
    # Whole batches only: every stored page has its article, nothing twice.
    n, distinct, arts = rows(lake_db, "SELECT count(*), count(DISTINCT r.url), count(a.url) "
                                      "FROM raw_pages r LEFT JOIN article_records a USING (url)")[0]
    assert n == distinct == arts == at_kill
    stats = import_warc(paths=[str(a)], sources_file=str(reg), db=lake_db, workers=1,
                        run_dedupe=False)
    assert stats["new_articles"] == 40 - at_kill
    for table in ("raw_pages", "article_records"):
        n, distinct = rows(lake_db, f"SELECT count(*), count(DISTINCT url) FROM {table}")[0]
        assert n == distinct == 40, table
    assert rows(lake_db, "SELECT status FROM runs") == [("completed",)]


def test_two_writers_of_one_key_end_with_one_row(lake_db: str) -> None:
    """Both transactions open at once and insert the same new key: the commit token makes the
    later COMMIT fail, and its unit of work runs again and finds the key stored."""
    with writer(lake_db):
        pass  # migrated before the race
    inside = threading.Barrier(2, timeout=60)
    conflicts: list[str] = []

    @retry_out_of_memory("store one page")
    def store(who: str) -> None:
        with writer(lake_db) as con:
            have = writes.stored(con, "runs", "run_id", ["same-run"])
            if not have:
                writes.start_run(con, "same-run", who, {})
            # Both transactions are open before either commits; a re-run after a conflict finds
            # the barrier broken (the other writer is done) and goes on alone.
            with contextlib.suppress(threading.BrokenBarrierError):
                inside.wait()

    def run(who: str) -> None:
        try:
            store(who)
        except Exception as exc:  # noqa: BLE001
            conflicts.append(repr(exc))

    real_backoff = lake.backoff

    def backoff(attempt: int) -> None:
        inside.abort()  # a lost race re-runs alone: the barrier must not wait for a partner
        real_backoff(attempt)

    lake.backoff = backoff  # type: ignore[assignment]
    try:
        threads = [threading.Thread(target=run, args=(w,)) for w in ("A", "B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        lake.backoff = real_backoff  # type: ignore[assignment]
    assert not conflicts, conflicts
    assert rows(lake_db, "SELECT count(*) FROM runs WHERE run_id = 'same-run'") == [(1,)]


def test_without_the_token_both_inserts_commit(lake_db: str) -> None:
    """Why the token exists: two bare transactions inserting one key both commit on DuckLake."""
    with writer(lake_db):
        pass
    inside = threading.Barrier(2, timeout=60)
    errors: list[str] = []

    def run(who: str) -> None:
        try:
            with lake.cursor(lake_db, None) as con:
                con.execute("BEGIN TRANSACTION")
                if not writes.stored(con, "runs", "run_id", ["bare"]):
                    writes.start_run(con, "bare", who, {})
                inside.wait()
                con.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(w,)) for w in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert rows(lake_db, "SELECT count(*) FROM runs WHERE run_id = 'bare'") == [(2,)]


def test_ad_hoc_sql_cannot_change_a_lake(lake_db: str, lake_env: dict[str, str]) -> None:
    """Readers run in a transaction that is rolled back: `newsflow sql` writes nothing."""
    with writer(lake_db) as con:
        writes.start_run(con, "kept", "import-warc", {})
    newsflow("sql", "DELETE FROM runs", "--db", lake_db, env=lake_env)
    assert rows(lake_db, "SELECT run_id FROM runs") == [("kept",)]


# What every CLI command does first: open the database once for writing (a new one migrates).
MIGRATE = "import sys\nfrom newsflow.runtime import check_db\ncheck_db(sys.argv[1])\n"


def test_processes_creating_one_lake_at_once_migrate_it_once(lake_db: str,
                                                             lake_env: dict[str, str]) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, lake_db], env=lake_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errs = [p.communicate(timeout=180)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(e[-1500:] for e in errs)
    versions = [r[0] for r in rows(lake_db, "SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == list(range(1, latest_version() + 1))  # each once
