"""Registries of thousands of sources, and the one retry of work that runs out of memory."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from newsflow.errors import DatabaseMemoryError
from newsflow.types import Failure, Registry, Source
from storage import writes
from storage.db import reader, writer
from storage.memory import MEMORY_ENV, retry_out_of_memory
from storage.reads import sources_match


def big_registry(n: int) -> Registry:
    """n sources with every list key filled, as a newsroom's registry has them."""
    return Registry(path="big.toml", sources=tuple(
        Source(name=f"site{i:05d}", publisher=f"Publisher {i}", kind="original",
               domains=(f"site{i:05d}.example", f"news.site{i:05d}.example"),
               feeds=(f"https://site{i:05d}.example/feed/", f"https://site{i:05d}.example/rss"),
               sitemaps=(f"https://site{i:05d}.example/news-sitemap.xml",),
               pages=(f"https://site{i:05d}.example/news/",))
        for i in range(n)))


def test_ten_thousand_sources_upsert_under_a_small_cap(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer's default cap is 64MB; 16MB leaves the work 4x headroom under it.
    monkeypatch.setenv(MEMORY_ENV, "16MB")
    db, reg = tmp_path / "news.duckdb", big_registry(10_000)
    with writer(db) as con:
        writes.upsert_sources(con, reg)
    changed = Registry(path="big.toml", sources=tuple(
        replace(s, publisher=s.publisher + " Inc.", feeds=(*s.feeds, "https://x.example/f"))
        if i % 2 else s for i, s in enumerate(reg.sources)))
    with writer(db) as con:
        assert sources_match(con, reg) and not sources_match(con, changed)
        writes.upsert_sources(con, changed)
    with writer(db) as con:
        con.execute("COMMIT")  # a checkpoint runs outside a transaction
        con.execute("CHECKPOINT")
        con.execute("BEGIN TRANSACTION")
    with reader(db) as con:
        assert sources_match(con, changed)
        n, distinct = con.execute("SELECT count(*), count(DISTINCT name) FROM sources").fetchone()
        assert n == distinct == 10_000
        row = con.execute("SELECT publisher, feeds FROM sources WHERE name = 'site00001'").fetchone()
    assert row == ("Publisher 1 Inc.", ["https://site00001.example/feed/",
                                       "https://site00001.example/rss", "https://x.example/f"])


def test_thousands_of_failures_in_one_transaction(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "32MB")  # half the writer's cap
    db = tmp_path / "news.duckdb"
    fails = [Failure(url=f"https://s{i % 300}.example/{i}", source=f"s{i % 300}", stage="fetch",
                     reason="http_503", transient=True) for i in range(3000)]
    with writer(db) as con:
        writes.record_failures(con, fails)
        writes.record_failures(con, fails[:10] + fails[:10])  # a URL twice adds both attempts
        writes.save_validators(con, {f.url: ('"e"', None, None) for f in fails})
        writes.record_attempts(con, "run-1", [(f.url, f.source, "page", "failed", 503,
                                               f.reason, 1) for f in fails])
    with reader(db) as con:
        assert con.execute("SELECT count(*) FROM failures").fetchone() == (3000,)
        assert con.execute("SELECT max(attempts) FROM failures").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM http_validators").fetchone() == (3000,)
        assert con.execute("SELECT count(*) FROM fetch_attempts").fetchone() == (3000,)


def _heavy_write(db: Path) -> int:
    """A transaction that needs ~20 MB of DuckDB memory: per-row upserts (each statement keeps
    its transaction-local blocks until the commit)."""
    with writer(db) as con:
        for i in range(80):
            con.execute("INSERT INTO runs VALUES (?, 'x', now(), NULL, 'done', NULL, NULL) "
                        "ON CONFLICT DO NOTHING", [f"run-{i}"])
        return int(con.execute("SELECT count(*) FROM runs").fetchone()[0])  # type: ignore[index]


def test_out_of_memory_is_retried_once_with_a_larger_cap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "news.duckdb"
    monkeypatch.setenv(MEMORY_ENV, "12MB")
    with pytest.raises(duckdb.OutOfMemoryException):  # the work does not fit the cap itself
        _heavy_write(db)
    with caplog.at_level(logging.WARNING, logger="newsflow.storage"):
        assert retry_out_of_memory("heavy test write")(_heavy_write)(db) == 80
    assert any("heavy test write" in r.message and "retrying once" in r.message
               for r in caplog.records)


def test_out_of_memory_twice_is_a_clear_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "2MB")  # 8MB on the retry: still too small
    with pytest.raises(DatabaseMemoryError, match="heavy test write.*NEWSFLOW_DB_MEMORY"):
        retry_out_of_memory("heavy test write")(_heavy_write)(tmp_path / "news.duckdb")
