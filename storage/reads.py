"""Reads the flows need: what is stored already, validators, raw pages for re-extraction."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any

import duckdb
import zstandard

from newsflow.types import RawPage, Registry
from newsflow.warc import read_record
from storage.writes import changed_sources

# Articles dedupe has to (re)process: never processed, re-extracted since, or flagged dirty.
# Spelled here, not in storage.dedupe (whose numpy import an unchanged run would pay): that run asks
# dedupe_pending() and needs nothing else of dedupe.
PENDING_FROM = ("FROM article_records a LEFT JOIN dedupe_articles d USING (article_id) "
                "WHERE d.article_id IS NULL OR d.dirty OR d.extracted_at <> a.extracted_at")


def dedupe_pending(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any article waits for dedupe."""
    return con.execute(f"SELECT EXISTS (SELECT 1 {PENDING_FROM})").fetchone() == (True,)


def stored_urls(con: duckdb.DuckDBPyConnection, urls: list[str]) -> set[str]:
    """Which of urls already have an article, or failed permanently (not worth fetching again)."""
    if not urls:
        return set()
    rows = con.execute(
        "SELECT url FROM article_records WHERE url IN (SELECT unnest($1)) UNION "
        "SELECT url FROM failures WHERE url IN (SELECT unnest($1)) "
        "AND (NOT transient OR next_retry_at > $2)",
        [urls, datetime.now(UTC)],
    ).fetchall()
    return {r[0] for r in rows}


def all_known_urls(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Every URL discovery should skip: stored articles and failures not yet due for a retry."""
    rows = con.execute(
        "SELECT url FROM article_records UNION SELECT url FROM failures "
        "WHERE NOT transient OR next_retry_at > ?", [datetime.now(UTC)]).fetchall()
    return frozenset(r[0] for r in rows)


def due_retries(con: duckdb.DuckDBPyConnection, sources: list[str], *, now: datetime | None = None,
                limit: int = 1000) -> list[tuple[str, str]]:
    """(url, source) of pages whose transient fetch failure is due for a retry, oldest due first.

    Only stage 'fetch': a feed or sitemap that failed is fetched again by discovery anyway, and
    must never be fetched as if it were an article. Permanent failures have no next_retry_at.
    """
    if not sources:
        return []
    rows = con.execute(
        "SELECT url, source FROM failures WHERE stage = 'fetch' AND transient "
        "AND next_retry_at <= $1 AND source IN (SELECT unnest($2)) "
        "AND url NOT IN (SELECT url FROM article_records) ORDER BY next_retry_at, url LIMIT $3",
        [now or datetime.now(UTC), sources, limit]).fetchall()
    return [(r[0], r[1]) for r in rows]


def validators(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str | None, str | None, str | None]]:
    """Stored (etag, last_modified, body_sha256) per feed / sitemap / listing URL."""
    rows = con.execute("SELECT url, etag, last_modified, body_sha256 FROM http_validators").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


# The columns raw_page() reads, in its order.
RAW_PAGE_COLUMNS = ("url, source, fetched_at, status, content_type, final_url, etag, "
                    "last_modified, body, body_codec, warc_file, warc_offset")


def unpack_body(body: bytes, codec: str | None, warc_file: str | None = None,
                warc_offset: int | None = None) -> bytes:
    """A stored raw body: decompressed (zstd, or gzip before schema 5), or read from its WARC."""
    if codec == "warc" and warc_file is not None and warc_offset is not None:
        return read_record(warc_file, warc_offset).body
    if codec == "zstd":
        return zstandard.ZstdDecompressor().decompress(body)
    return gzip.decompress(body)


def raw_page(row: tuple[Any, ...]) -> RawPage:
    """A raw_pages row (RAW_PAGE_COLUMNS) as the RawPage it was stored from."""
    return RawPage(url=row[0], source=row[1], fetched_at=row[2], status=row[3],
                   content_type=row[4] or "", final_url=row[5] or "", etag=row[6],
                   last_modified=row[7], body=unpack_body(row[8], row[9], row[10], row[11]),
                   warc_file=row[10], warc_offset=row[11])


def stored_page_urls(con: duckdb.DuckDBPyConnection, source: str | None) -> list[str]:
    """The URLs of every stored raw page (of one source), in a stable order."""
    sql = "SELECT url FROM raw_pages" + (" WHERE source = ?" if source else "") + " ORDER BY url"
    return [r[0] for r in con.execute(sql, [source] if source else []).fetchall()]


def read_pages(con: duckdb.DuckDBPyConnection, urls: list[str]) -> list[RawPage]:
    """The stored raw pages of urls, decompressed."""
    rows = con.execute(f"SELECT {RAW_PAGE_COLUMNS} FROM raw_pages WHERE url IN (SELECT unnest(?)) "
                       "ORDER BY url", [urls]).fetchall()
    return [raw_page(r) for r in rows]


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every base table (for the demo summary and idempotence checks)."""
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "ORDER BY table_name").fetchall()]
    out = {}
    for n in names:
        row = con.execute(f'SELECT count(*) FROM "{n}"').fetchone()
        out[n] = int(row[0]) if row else 0
    return out


def sources_match(con: duckdb.DuckDBPyConnection, registry: Registry) -> bool:
    """Whether the sources table already holds every source of registry as it is there (what
    writes.upsert_sources would leave unchanged)."""
    return not changed_sources(con, registry)


def failure_labels(con: duckdb.DuckDBPyConnection) -> tuple[set[str], set[str]]:
    """The sources and the reasons that have failures recorded."""
    rows = con.execute("SELECT DISTINCT source, reason FROM failures").fetchall()
    return {r[0] for r in rows}, {r[1] for r in rows}


def stored_sources(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Sources with raw pages stored (what re-extraction can work on)."""
    return {r[0] for r in con.execute("SELECT DISTINCT source FROM raw_pages").fetchall()}


def flagged_sources(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The consecutive failing runs of every source the source_health view flags."""
    return dict(con.execute("SELECT source, consecutive_failing_runs FROM source_health "
                            "WHERE flagged").fetchall())


# The source_health columns `newsflow sources` shows, in its order.
HEALTH_COLUMNS = ("runs", "consecutive_failing_runs", "flagged", "last_failure_reason")


def source_health(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[Any, ...]]:
    """HEALTH_COLUMNS of every source in the source_health view, by source name."""
    try:
        rows = con.execute(f"SELECT source, {', '.join(HEALTH_COLUMNS)} FROM source_health"
                           ).fetchall()
    except duckdb.CatalogException:  # a database from before the view
        return {}
    return {r[0]: tuple(r[1:]) for r in rows}
