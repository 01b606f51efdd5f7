"""Credited publishers on a real database: the source's own publisher (sources.toml) is dropped."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from newsflow.types import Article, Registry, Source
from newsflow.urls import article_id
from storage import writes
from storage.db import reader, writer

WHEN = datetime(2023, 9, 6, 9, 14, tzinfo=UTC)
REGISTRY = Registry(path="test.toml", sources=(
    Source(name="thehill", publisher="Nexstar Media", kind="original", domains=("thehill.com",)),
    Source(name="vigourtimes", publisher="Vigour Times", kind="aggregator",
           domains=("vigourtimes.com",)),
))


def _article(url: str, source: str) -> Article:
    return Article(article_id=article_id(url), url=url, source=source, fetched_at=WHEN,
                   text="one two three four five six", title="T",
                   credited_publisher="Nexstar Media Inc.",
                   attribution_url="https://thehill.com/policy/international/4190000-x/",
                   published_at=datetime(2023, 9, 5, 17, 32, tzinfo=UTC))


def _credited(db: Path) -> dict[str, tuple[str | None, str | None, datetime | None]]:
    with reader(db) as con:
        rows = con.execute("SELECT source, credited_publisher, attribution_url, published_at "
                           "FROM articles").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_own_publisher_dropped_foreign_kept(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    arts = [_article("https://thehill.com/a", "thehill"),
            _article("https://vigourtimes.com/a", "vigourtimes"),
            _article("https://unlisted.example/a", "unlisted.example")]  # no registered publisher
    with writer(db) as con:
        writes.upsert_sources(con, REGISTRY)
        writes.store_articles(con, arts)
    got = _credited(db)
    assert got["thehill"][0] is None  # The Hill's "(c) Nexstar Media Inc." is its own
    assert got["vigourtimes"][0] == "Nexstar Media Inc."
    assert got["unlisted.example"][0] == "Nexstar Media Inc."
    assert got["vigourtimes"][1] == "https://thehill.com/policy/international/4190000-x/"
    assert got["vigourtimes"][2] == datetime(2023, 9, 5, 17, 32, tzinfo=UTC)
    # Re-extraction replaces the rows through the same rule.
    with writer(db) as con:
        writes.store_articles(con, [replace(a, credited_publisher="Nexstar Media Group, Inc.")
                                    for a in arts], replace=True)
    got = _credited(db)
    assert got["thehill"][0] is None and got["vigourtimes"][0] == "Nexstar Media Group, Inc."
