"""DuckDB's buffer pool caps, the sources check, and the dedupe's batch loading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from newsflow.types import Article, Registry, Source
from newsflow.urls import article_id
from storage import boilerplate as store_bp
from storage import dedupe as store
from storage import writes
from storage.db import reader, writer
from storage.memory import MEMORY_ENV, READER_MEMORY, WRITER_MEMORY, raise_memory
from storage.reads import sources_match

WHEN = datetime(2024, 5, 1, 12, tzinfo=UTC)
REGISTRY = Registry(path="test.toml", sources=(
    Source(name="thehill", publisher="Nexstar Media", kind="original", domains=("thehill.com",)),))


def _limit(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert row is not None
    return str(row[0])


def _mb(setting: str) -> float:
    """DuckDB's spelling of a limit ('61.0 MiB') in MB, to compare with ours ('64MB')."""
    value, unit = setting.split()
    return float(value) * {"MiB": 2**20, "GiB": 2**30, "KiB": 2**10}[unit] / 1e6


def test_writers_and_readers_get_their_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    db = tmp_path / "news.duckdb"
    with writer(db) as con:
        assert _mb(_limit(con)) == pytest.approx(float(WRITER_MEMORY.removesuffix("MB")), rel=0.01)
        raise_memory(con, "200MB")
        assert _mb(_limit(con)) == pytest.approx(200, rel=0.01)
    with reader(db) as con:
        assert _mb(_limit(con)) == pytest.approx(float(READER_MEMORY.removesuffix("MB")), rel=0.01)


def test_the_environment_caps_every_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "300MB")
    db = tmp_path / "news.duckdb"
    with writer(db) as con:
        raise_memory(con, "200MB")  # the user's cap wins
        assert _mb(_limit(con)) == pytest.approx(300, rel=0.01)
    with reader(db) as con:
        assert _mb(_limit(con)) == pytest.approx(300, rel=0.01)


def test_sources_match_sees_any_difference(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    with writer(db) as con:
        assert not sources_match(con, REGISTRY)
        writes.upsert_sources(con, REGISTRY)
        assert sources_match(con, REGISTRY)
    other = Source(name="thehill", publisher="Nexstar Media", kind="aggregator",
                   domains=("thehill.com",))
    more = Source(name="bbc", publisher="BBC", kind="original", domains=("bbc.co.uk",))
    with reader(db) as con:
        assert not sources_match(con, Registry(path="x", sources=(other,)))
        assert not sources_match(con, Registry(path="x", sources=(*REGISTRY.sources, more)))


def test_pending_keeps_fetch_order_and_cleaned_texts(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    urls = [f"https://thehill.com/{n}" for n in range(5)]
    arts = [Article(article_id=article_id(u), url=u, source="thehill",
                    fetched_at=WHEN - timedelta(minutes=n), text=f"story {n}\nline two", title="T")
            for n, u in enumerate(urls)]
    with writer(db) as con:
        writes.upsert_sources(con, REGISTRY)
        writes.store_articles(con, arts)
        store_bp.update_texts(con, [(arts[1].article_id, "story 1")])
    with reader(db) as con:
        got = store.pending(con, 10)
    assert [p.url for p in got] == list(reversed(urls))  # oldest fetch first
    by_url = {p.url: p for p in got}
    assert by_url[urls[1]].text == "story 1" and by_url[urls[1]].raw_text == "story 1\nline two"
    assert all(p.text == p.raw_text for u, p in by_url.items() if u != urls[1])


def test_dedupe_pending_says_what_pending_finds(tmp_path: Path) -> None:
    # The cheap check unchanged runs use (no numpy import) must agree with dedupe's own query.
    from storage.reads import dedupe_pending
    from tasks.dedupe import run_all

    db = tmp_path / "news.duckdb"
    art = Article(article_id=article_id("https://thehill.com/a"), url="https://thehill.com/a",
                  source="thehill", fetched_at=WHEN, text="one story\nline two", title="T")
    with writer(db) as con:
        writes.upsert_sources(con, REGISTRY)
        assert not dedupe_pending(con) and not store.pending(con, 1)
        writes.store_articles(con, [art])
        assert dedupe_pending(con) and store.pending(con, 1)
    run_all(str(db))
    with reader(db) as con:
        assert not dedupe_pending(con) and not store.pending(con, 1)
    with writer(db) as con:
        con.execute("UPDATE dedupe_articles SET dirty = true")  # as mark_dirty flags them
        assert dedupe_pending(con) and store.pending(con, 1)
