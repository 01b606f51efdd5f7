"""The newsflow CLI as users run it: a subprocess, clear one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsflow.types import Article
from newsflow.urls import article_id
from storage import writes
from storage.db import writer
from tests.support.httpserver import FixtureServer
from tests.support.sites import serve_good_site, sources_toml


def newsflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsflow", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


@pytest.fixture
def db(tmp_path: Path) -> str:
    from datetime import UTC, datetime
    path = str(tmp_path / "n.duckdb")
    url = "https://thehill.com/a"
    with writer(path) as con:
        writes.store_articles(con, [Article(article_id=article_id(url), url=url, source="thehill",
                                            fetched_at=datetime(2024, 1, 1, tzinfo=UTC),
                                            text="a b c d e f", title="Hello, world")])
    return path


def test_sql_json(db: str) -> None:
    r = newsflow("sql", "SELECT title, word_count FROM articles", "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"title": "Hello, world", "word_count": 6}]


def test_sql_csv(db: str) -> None:
    r = newsflow("sql", "SELECT title FROM articles", "--db", db, "-f", "csv")
    assert r.returncode == 0 and r.stdout.splitlines() == ["title", '"Hello, world"']


def test_sql_is_read_only(db: str) -> None:
    r = newsflow("sql", "DELETE FROM article_records", "--db", db)
    assert r.returncode == 1 and "read-only" in r.stderr.lower()
    assert "Traceback" not in r.stderr


def test_sql_bad_query_is_one_clear_line(db: str) -> None:
    r = newsflow("sql", "SELEKT 1", "--db", db)
    assert r.returncode == 1 and "query failed" in r.stderr and "Traceback" not in r.stderr


def test_sql_missing_database_names_the_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.duckdb")
    r = newsflow("sql", "SELECT 1", "--db", missing)
    assert r.returncode == 1 and missing in r.stderr and "Traceback" not in r.stderr


def test_db_from_environment(db: str) -> None:
    r = newsflow("sql", "SELECT count(*) AS n FROM articles", "-f", "csv", env={"NEWSFLOW_DB": db})
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "1"]


def test_bad_sources_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "sources.toml"
    bad.write_text('[[sources]]\nname = "x"\npublisher = "X"\nkind = "blog"\ndomains = ["x.com"]\n')
    r = newsflow("run", "--sources", str(bad), "--db", str(tmp_path / "n.duckdb"))
    assert r.returncode == 1, r.stdout
    assert str(bad) in r.stderr and "'x'" in r.stderr and "kind" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_warc_names_the_file(tmp_path: Path) -> None:
    r = newsflow("import-warc", str(tmp_path / "missing.warc.gz"), "--db", str(tmp_path / "n.duckdb"))
    assert r.returncode == 1 and "missing.warc.gz" in r.stderr and "Traceback" not in r.stderr


def test_run_ingests_a_live_site(tmp_path: Path, http_server: FixtureServer) -> None:
    serve_good_site(http_server)
    reg = sources_toml(tmp_path / "sources.toml", http_server, feeds=["/feed/"])
    db = str(tmp_path / "n.duckdb")
    r = newsflow("run", "--sources", str(reg), "--db", db,
                 env={"PREFECT_HOME": str(tmp_path / "prefect")})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "4 new articles" in r.stdout
    r = newsflow("sql", "SELECT count(*) AS n FROM stories", "--db", db, "-f", "csv")
    assert r.stdout.splitlines() == ["n", "4"]  # dedupe ran after the ingest


@pytest.mark.skipif(sys.platform != "linux", reason="glibc malloc tuning is Linux-only")
def test_malloc_tuning_reaches_child_processes() -> None:
    # The CLI sets GLIBC_TUNABLES for its children (Prefect's API server, the extraction
    # pool); `sql` needs neither, so a child Python reads it back here instead.
    code = ("import os, subprocess, sys; from newsflow.runtime import tune_malloc; tune_malloc(); "
            "print(subprocess.run([sys.executable, '-c', 'import os; "
            "print(os.environ.get(\"GLIBC_TUNABLES\"))'], capture_output=True, text=True).stdout)")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert "glibc.malloc.mmap_threshold=131072" in out and "glibc.malloc.arena_max=2" in out
    mine = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**env, "GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}).stdout
    assert mine.strip() == "glibc.malloc.arena_max=4"  # the user's own setting is left alone
