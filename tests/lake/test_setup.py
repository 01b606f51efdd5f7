"""The lake backend's pieces without PostgreSQL: clear errors when a package or the DuckDB
version is wrong, the DDL without constraints, and ON CONFLICT's lake equivalent on a
local-file catalog answering as the file does."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import duckdb
import pytest

from storage import lake
from storage.db import db_path, reader, writer
from storage.schema import MIGRATIONS, lake_sql, table_keys

needs_packages = pytest.mark.skipif(
    duckdb.__version__ != lake.DUCKDB_VERSION, reason=f"DuckLake needs duckdb {lake.DUCKDB_VERSION}")


def test_a_wrong_duckdb_names_the_version_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb, "__version__", "1.5.6")
    with pytest.raises(lake.LakeSetupError, match=r"duckdb==1\.5\.5.*1\.5\.6.*pip install -e '\.\[lake\]'"):
        lake.extension_file(lake.PACKAGES["ducklake"])


def test_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb, "__version__", lake.DUCKDB_VERSION)
    real = builtins.__import__

    def refuse(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("duckdb_extension_"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    monkeypatch.setattr("importlib.import_module", lambda name: refuse(name))
    with pytest.raises(lake.LakeSetupError, match=r"duckdb-extension-ducklake==1\.5\.5.*\[lake\]"):
        lake.extension_file(lake.PACKAGES["ducklake"])


def test_the_lake_ddl_has_no_key_constraints_and_the_keys_are_known() -> None:
    sql = lake_sql("\n".join(m.sql for m in MIGRATIONS))
    assert "PRIMARY KEY" not in sql and "UNIQUE" not in sql
    keys = table_keys()
    assert keys["fetch_attempts"] == ("url", "run_id", "kind")
    assert keys["article_records"] == ("article_id",) and keys["reworded_df"] == ("term",)


def test_a_lake_url_is_not_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pg = "ducklake:postgres:dbname=newsflow host=db.internal user=newsflow"
    assert db_path(pg) == pg
    monkeypatch.chdir(tmp_path)
    assert db_path("ducklake:meta.ducklake") == f"ducklake:{tmp_path}/meta.ducklake"
    assert lake.redacted("ducklake:postgres:dbname=x password=secret") == \
        "ducklake:postgres:dbname=x password=***"


CASES = [  # (table, rows, conflict clause) as storage writes them
    ("failures", "VALUES ('u', 's', 'fetch', 'r1', NULL, 500, TRUE, 1, now(), now(), NULL), "
                 "('u', 's', 'fetch', 'r2', NULL, 500, TRUE, 1, now(), now(), NULL)",
     "ON CONFLICT (url) DO UPDATE SET reason = excluded.reason, attempts = failures.attempts + 1"),
    ("failures", "VALUES ('v', 's', 'fetch', 'r3', NULL, 404, FALSE, 1, now(), now(), NULL)",
     "ON CONFLICT (url) DO NOTHING"),
    ("reworded_df", "VALUES (1, 2), (3, 4)",
     "ON CONFLICT (term) DO UPDATE SET df = reworded_df.df + excluded.df"),
    ("http_validators", "VALUES ('f', 'e', NULL, 'h', now())", "ON CONFLICT DO NOTHING"),
]


# Each table's columns but the times a write stamps.
READ = [("failures", "first_failed_at, last_failed_at"), ("reworded_df", "term"),
        ("http_validators", "checked_at")]


@needs_packages
def test_on_conflict_on_a_lake_answers_as_on_the_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_DATA_PATH", str(tmp_path / "data"))
    dbs = [str(tmp_path / "news.duckdb"), f"ducklake:{tmp_path / 'meta.ducklake'}"]
    try:
        for db in dbs:
            for _ in range(2):  # twice: the second round meets every key stored
                for table, values, conflict in CASES:
                    with writer(db) as con:
                        lake.insert(con, table, values, None, conflict)
        answers = []
        for db in dbs:
            with reader(db) as con:
                answers.append([con.execute(f"SELECT * EXCLUDE ({times}) FROM {t} ORDER BY ALL")
                                .fetchall() for t, times in READ])
        assert answers[0] == answers[1]
        assert answers[1][1] == [(4,), (8,)]  # df added up once per round
    finally:
        lake.close_all()  # a local catalog file is one process's at a time


@needs_packages
def test_updates_without_returning_count_as_on_the_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """reset_failures and mark_dirty use UPDATE ... RETURNING on the file; the lake counts first."""
    from newsflow.types import Failure
    from storage import writes
    from storage.boilerplate import mark_dirty

    monkeypatch.setenv("NEWSFLOW_DATA_PATH", str(tmp_path / "data"))
    failures = [Failure(url=f"https://a.example/{i}", source="a" if i % 2 else "b", stage="fetch",
                        reason="http_500", status=500, transient=False) for i in range(5)]
    answers = []
    try:
        for db in (str(tmp_path / "news.duckdb"), f"ducklake:{tmp_path / 'meta.ducklake'}"):
            with writer(db) as con:
                writes.record_failures(con, failures)
                con.execute("INSERT INTO dedupe_articles VALUES ('x', 's', 'k', NULL, 'h', 1, "
                            "now(), now(), FALSE), ('y', 's', 'k2', NULL, 'h2', 1, now(), now(), "
                            "FALSE)")
                con.execute("INSERT INTO dedupe_blocks VALUES ('s', 'b1', 'x'), ('s', 'b2', 'y')")
            with writer(db) as con:
                reset = writes.reset_failures(con, source="a")
                dirty = mark_dirty(con, [("s", "b1")], batch=False)
                again = mark_dirty(con, [("s", "b1")], batch=False)  # already dirty: none
            with reader(db) as con:
                state = con.execute("SELECT url, transient, attempts FROM failures ORDER BY url"
                                    ).fetchall() + con.execute(
                    "SELECT article_id, dirty FROM dedupe_articles ORDER BY 1").fetchall()
            answers.append((reset, dirty, again, state))
    finally:
        lake.close_all()
    assert answers[0] == answers[1]
    assert answers[1][:3] == (2, 1, 0)
