"""Migrations on a fresh DuckDB file: applied once, in order, and the views exist."""

from __future__ import annotations

from pathlib import Path

import duckdb

from storage.db import migrate, writer
from storage.schema import latest_version

ARTICLES_COLUMNS = ["article_id", "url", "canonical_url", "source", "publisher", "source_kind",
                    "title", "author", "published_at", "fetched_at", "language", "word_count",
                    "text"]
# Columns added later go after the contract's, never between them.
ARTICLES_ADDED = ["date_trusted", "attribution_url", "credited_publisher"]


def test_fresh_database_is_migrated_to_latest(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    with writer(db):
        pass
    con = duckdb.connect(str(db), read_only=True)
    versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
    assert versions[-1] == latest_version()
    assert versions == sorted(set(versions))


def test_migrate_twice_applies_nothing(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    assert migrate(con) != []
    assert migrate(con) == []


def test_articles_view_has_the_contract_columns(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    with writer(db) as con:
        cols = [r[0] for r in con.execute("DESCRIBE articles").fetchall()]
    assert cols == ARTICLES_COLUMNS + ARTICLES_ADDED

