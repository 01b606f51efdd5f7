"""Idempotent writes on a fresh database: the same batch twice adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from newsflow.types import Article, Failure, RawPage, Registry, Source
from newsflow.urls import article_id
from storage import writes
from storage.db import reader, writer
from storage.reads import RAW_PAGE_COLUMNS, all_known_urls, raw_page, table_counts

WHEN = datetime(2024, 5, 1, 12, tzinfo=UTC)
REGISTRY = Registry(path="test.toml", sources=(
    Source(name="thehill", publisher="Nexstar Media", kind="original", domains=("thehill.com",)),))


def _raw_pages(con: duckdb.DuckDBPyConnection) -> list[RawPage]:
    """Every stored raw page, decompressed (or read back from its WARC), in URL order."""
    return [raw_page(r) for r in
            con.execute(f"SELECT {RAW_PAGE_COLUMNS} FROM raw_pages ORDER BY url").fetchall()]


def _page(url: str) -> RawPage:
    return RawPage(url=url, source="thehill", fetched_at=WHEN, body=b"<html>hi</html>")


def _article(url: str, source: str = "thehill") -> Article:
    return Article(article_id=article_id(url), url=url, source=source, fetched_at=WHEN,
                   text="one two three four five six", title="T")


def _store(db: Path) -> list[str]:
    with writer(db) as con:
        writes.upsert_sources(con, REGISTRY)
        writes.store_pages(con, [_page("https://thehill.com/a")])
        new = writes.store_articles(con, [_article("https://thehill.com/a"),
                                          _article("https://example.org/b", "example.org")])
        writes.record_import_failures(con, [Failure(url="https://thehill.com/c", source="thehill",
                                                    stage="extract", reason="not_html")])
    return new


def test_same_batch_twice_adds_no_rows(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    assert len(_store(db)) == 2
    with reader(db) as con:
        first = table_counts(con)
    assert _store(db) == []
    with reader(db) as con:
        assert table_counts(con) == first


def test_unknown_host_gets_hostname_source_and_unknown_kind(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    _store(db)
    with reader(db) as con:
        rows = dict(con.execute("SELECT source, source_kind FROM articles").fetchall())
    assert rows == {"thehill": "original", "example.org": "unknown"}


def test_raw_html_is_kept_compressed_and_readable(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    _store(db)
    with reader(db) as con:
        pages = _raw_pages(con)
        assert con.execute("SELECT body_size FROM raw_pages").fetchone() == (15,)
    assert [p.body for p in pages] == [b"<html>hi</html>"]


def test_failed_and_stored_urls_are_known(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    _store(db)
    with reader(db) as con:
        assert all_known_urls(con) == {"https://thehill.com/a", "https://example.org/b",
                                       "https://thehill.com/c"}


def test_transient_failure_attempts_accumulate_and_clear_on_success(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    fail = Failure(url="https://thehill.com/a", source="thehill", stage="fetch", reason="http_503",
                   status=503, transient=True, attempts=3)
    for _ in range(2):
        with writer(db) as con:
            writes.record_failures(con, [fail])
    with reader(db) as con:
        row = con.execute("SELECT attempts, reason, next_retry_at IS NOT NULL FROM failures").fetchone()
    assert row == (6, "http_503", True)
    with writer(db) as con:
        writes.store_articles(con, [_article("https://thehill.com/a")])
    with reader(db) as con:
        assert con.execute("SELECT count(*) FROM failures").fetchone() == (0,)


def test_transient_failure_becomes_permanent_after_many_attempts(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    fail = Failure(url="https://thehill.com/a", source="thehill", stage="fetch", reason="http_503",
                   status=503, transient=True, attempts=writes.GIVE_UP_ATTEMPTS // 2)
    for _ in range(2):
        with writer(db) as con:
            writes.record_failures(con, [fail])
    with reader(db) as con:
        row = con.execute("SELECT transient, next_retry_at, detail FROM failures").fetchone()
        known = all_known_urls(con)
    assert row is not None and row[0] is False and row[1] is None and "gave up" in row[2]
    assert "https://thehill.com/a" in known


def test_a_url_twice_in_one_batch_keeps_the_first_body(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    first = RawPage(url="https://thehill.com/a", source="thehill", fetched_at=WHEN, body=b"<p>1</p>")
    second = RawPage(url="https://thehill.com/a", source="thehill", fetched_at=WHEN, body=b"<p>2</p>")
    with writer(db) as con:
        writes.upsert_sources(con, REGISTRY)
        writes.store_pages(con, [first, second])
        writes.store_pages(con, [second])
    with reader(db) as con:
        assert [p.body for p in _raw_pages(con)] == [b"<p>1</p>"]


def test_pages_stored_gzip_before_schema_5_are_still_read(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    from storage import db as storage_db
    from storage.schema import MIGRATIONS

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    monkeypatch.setattr(storage_db, "MIGRATIONS", [m for m in MIGRATIONS if m.version < 5])
    storage_db.migrate(con)
    con.execute("INSERT INTO raw_pages VALUES (?, 'thehill', ?, 200, 'text/html', ?, NULL, NULL, "
                "'x', 8, ?)", ["https://thehill.com/old", WHEN, "https://thehill.com/old",
                               gzip.compress(b"<p>old</p>")])
    monkeypatch.setattr(storage_db, "MIGRATIONS", MIGRATIONS)
    assert storage_db.migrate(con) == [m.version for m in MIGRATIONS if m.version >= 5]
    writes.store_pages(con, [_page("https://thehill.com/new")])
    bodies = {p.url: p.body for p in _raw_pages(con)}
    con.close()
    assert bodies == {"https://thehill.com/old": b"<p>old</p>",
                      "https://thehill.com/new": b"<html>hi</html>"}
