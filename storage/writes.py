"""Idempotent writes: re-importing a WARC or re-running a flow adds no rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import zstandard

from newsflow.publishers import same_publisher
from newsflow.types import Article, Failure, RawPage, Registry, Source

EXTRACTOR = "trafilatura"
# HTTP attempts over all runs after which a transiently failing URL counts as permanently failed
# (with the backoff below, about two weeks of daily retries).
GIVE_UP_ATTEMPTS = 30
# Raw pages are kept for re-extraction, not served, and compressed in the flow process, which
# shares the cores with the extraction workers: zstd level 1 took 2.0 ms a page (190 KB average)
# where gzip level 1 took 5.9 ms, for 12% fewer bytes (storage/reads.py reads both).
ZSTD_LEVEL = 1
BODY_CODEC = "zstd"
# Rows per multi-row INSERT: ~20 columns each stays far below DuckDB's parameter limits.
_INSERT_CHUNK = 500


def now() -> datetime:
    return datetime.now(UTC)


def insert_values(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[tuple[Any, ...]],
                  conflict: str) -> None:
    """INSERT rows as multi-row VALUES statements: executemany runs one statement per row and
    cost ~2.5x the CPU for a batch of raw pages (bench/run.py). Within one statement a repeated
    key keeps its FIRST row, even with DO UPDATE: callers pass distinct keys where it matters."""
    if not rows:
        return
    one = "(" + ", ".join("?" * len(rows[0])) + ")"
    for i in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[i:i + _INSERT_CHUNK]
        con.execute(f"INSERT INTO {table} VALUES {', '.join([one] * len(chunk))} {conflict}",
                    [v for row in chunk for v in row])


# The sources table's columns after name, as source_fields spells them (reads.sources_match
# compares the same columns).
SOURCE_FIELDS = "publisher, kind, domains, feeds, sitemaps, pages, enabled"


def source_fields(s: Source) -> tuple[Any, ...]:
    """One source's row in the sources table, between its name and the update time."""
    return (s.publisher, s.kind, list(s.domains), list(s.feeds), list(s.sitemaps), list(s.pages),
            s.enabled)


def upsert_sources(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    """Mirror the registry into the sources table (so the articles view can join on it)."""
    rows = [(s.name, *source_fields(s), now()) for s in registry.sources]
    if not rows:
        return
    con.executemany(
        "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "publisher = excluded.publisher, kind = excluded.kind, domains = excluded.domains, "
        "feeds = excluded.feeds, sitemaps = excluded.sitemaps, pages = excluded.pages, "
        "enabled = excluded.enabled, updated_at = excluded.updated_at "
        "WHERE sources.publisher IS DISTINCT FROM excluded.publisher "
        "OR sources.kind IS DISTINCT FROM excluded.kind "
        "OR sources.domains IS DISTINCT FROM excluded.domains "
        "OR sources.feeds IS DISTINCT FROM excluded.feeds "
        "OR sources.sitemaps IS DISTINCT FROM excluded.sitemaps "
        "OR sources.pages IS DISTINCT FROM excluded.pages "
        "OR sources.enabled IS DISTINCT FROM excluded.enabled",
        rows,
    )


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, flow: str, params: dict[str, Any]) -> None:
    """Record a run; a re-run under the same id (a re-import) updates its row instead of adding one."""
    con.execute(
        "INSERT INTO runs VALUES (?, ?, ?, NULL, 'running', ?, NULL) ON CONFLICT (run_id) DO UPDATE "
        "SET started_at = excluded.started_at, finished_at = NULL, status = 'running'",
        [run_id, flow, now(), json.dumps(params, default=str)],
    )


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str, stats: Any) -> None:
    con.execute("UPDATE runs SET finished_at = ?, status = ?, stats = ? WHERE run_id = ?",
                [now(), status, json.dumps(stats, default=str), run_id])


def stored(con: duckdb.DuckDBPyConnection, table: str, key: str, values: Sequence[str]) -> set[str]:
    """The values of key already in table."""
    rows = con.execute(f"SELECT {key} FROM {table} WHERE {key} IN (SELECT unnest(?))",
                       [list(values)]).fetchall()
    return {r[0] for r in rows}


def store_pages(con: duckdb.DuckDBPyConnection, pages: Sequence[RawPage]) -> None:
    """Keep each page's raw body compressed; the first stored body of a URL wins."""
    # New URLs are picked here, not by ON CONFLICT DO NOTHING: DuckDB's conflict check cost
    # ~3 ms a row with these big rows, 7x the insert itself (bench/run.py writer figure).
    # Writers hold the file alone, so nothing can insert between the SELECT and the INSERT.
    seen = stored(con, "raw_pages", "url", [p.url for p in pages])
    packer = zstandard.ZstdCompressor(level=ZSTD_LEVEL)  # not thread-safe: one per call
    rows = []
    for p in pages:
        if p.url in seen:
            continue
        seen.add(p.url)
        # A WARC-imported body stays in its WARC (see schema migration 5).
        body, codec = (b"", "warc") if p.warc_file else (packer.compress(p.body), BODY_CODEC)
        rows.append((p.url, p.source, p.fetched_at, p.status, p.content_type, p.final_url or p.url,
                     p.etag, p.last_modified, hashlib.sha256(p.body).hexdigest(), len(p.body),
                     body, codec, p.warc_file, p.warc_offset))
    insert_values(con, "raw_pages", rows, "")


_REPLACE_ARTICLE = (
    "DO UPDATE SET canonical_url = excluded.canonical_url, title = excluded.title, "
    "author = excluded.author, published_at = excluded.published_at, "
    "date_trusted = excluded.date_trusted, sitename = excluded.sitename, "
    "language = excluded.language, word_count = excluded.word_count, text = excluded.text, "
    "raw_text = excluded.raw_text, links = excluded.links, extracted_at = excluded.extracted_at, "
    "extractor = excluded.extractor, attribution_url = excluded.attribution_url, "
    "credited_publisher = excluded.credited_publisher")


def _article_row(a: Article, extracted_at: datetime, publishers: dict[str, str]) -> tuple[Any, ...]:
    # A copyright line naming the source's own publisher (sources.toml) credits nobody: The Hill's
    # "(c) Nexstar Media Inc." on a Nexstar site. Extraction only knew the page's own names.
    credited = a.credited_publisher
    if credited and a.source in publishers and same_publisher(credited, publishers[a.source]):
        credited = None
    return (a.article_id, a.url, a.source, a.canonical_url, a.title, a.author, a.published_at,
            a.date_trusted, a.fetched_at, a.sitename, a.language, a.word_count, a.text,
            a.raw_text or a.text, list(a.links), extracted_at, EXTRACTOR, a.attribution_url,
            credited)


def source_publishers(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> dict[str, str]:
    """The registered publisher of each of these sources (sources not in the registry left out)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = con.execute("SELECT name, publisher FROM sources WHERE name IN (SELECT unnest(?))",
                       [wanted]).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def store_articles(con: duckdb.DuckDBPyConnection, articles: Sequence[Article], *,
                   replace: bool = False) -> list[str]:
    """Insert articles not stored yet (or replace them, for re-extraction); returns the new ids."""
    if not articles:
        return []
    ids = list(dict.fromkeys(a.article_id for a in articles))
    existing = stored(con, "article_records", "article_id", ids)
    stamp = now()
    # One row per id, as row-by-row inserts left it (see insert_values): the first one, or the
    # last one when replacing.
    unique: dict[str, Article] = {}
    for a in articles:
        if replace or a.article_id not in unique:
            unique[a.article_id] = a
    publishers = source_publishers(con, (a.source for a in unique.values() if a.credited_publisher))
    if replace:
        insert_values(con, "article_records",
                      [_article_row(a, stamp, publishers) for a in unique.values()],
                      f"ON CONFLICT (article_id) {_REPLACE_ARTICLE}")
    else:  # only the new ones, without DuckDB's costly conflict check (see store_pages)
        insert_values(con, "article_records", [_article_row(a, stamp, publishers)
                                               for a in unique.values()
                                               if a.article_id not in existing], "")
    # A page that now has an article no longer counts as failed.
    con.execute("DELETE FROM failures WHERE url IN (SELECT unnest(?))", [[a.url for a in articles]])
    return [i for i in ids if i not in existing]


def retry_after(f: Failure, attempts: int) -> datetime | None:
    """When a failed URL may be tried again: backoff for transient failures, never for permanent."""
    if not f.transient:
        return None
    return now() + timedelta(minutes=min(15 * 2 ** max(attempts - 1, 0), 24 * 60))


def record_failures(con: duckdb.DuckDBPyConnection, failures: Iterable[Failure]) -> int:
    """Upsert each URL's failure state (reason, attempts, last status, next retry)."""
    n = 0
    for f in failures:
        row = con.execute("SELECT attempts FROM failures WHERE url = ?", [f.url]).fetchone()
        attempts = (int(row[0]) if row else 0) + max(f.attempts, 1)
        if f.transient and attempts >= GIVE_UP_ATTEMPTS:  # stop retrying a URL that never recovers
            f = replace(f, transient=False,
                        detail=f"gave up after {attempts} attempts; last: {f.detail}")
        stamp = now()
        con.execute(
            "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE "
            "SET stage = excluded.stage, reason = excluded.reason, detail = excluded.detail, "
            "last_status = excluded.last_status, transient = excluded.transient, "
            "attempts = excluded.attempts, last_failed_at = excluded.last_failed_at, "
            "next_retry_at = excluded.next_retry_at",
            [f.url, f.source, f.stage, f.reason, f.detail[:2000], f.status, f.transient, attempts,
             stamp, stamp, retry_after(f, attempts)],
        )
        n += 1
    return n


def record_import_failures(con: duckdb.DuckDBPyConnection, failures: Iterable[Failure]) -> None:
    """Failures of a WARC import: the same record fails the same way, so keep one row, unchanged."""
    stamp = now()
    rows = [(f.url, f.source, f.stage, f.reason, f.detail[:2000], f.status, f.transient,
             max(f.attempts, 1), stamp, stamp, None) for f in failures]
    insert_values(con, "failures", rows, "ON CONFLICT (url) DO NOTHING")


def record_attempts(con: duckdb.DuckDBPyConnection, run_id: str,
                    rows: Iterable[tuple[str, str, str, str, int | None, str | None, int]]) -> None:
    """Log (url, source, kind, outcome, status, reason, attempts) exchanges of a live run."""
    stamp = now()
    data = [(url, source, run_id, stamp, kind, outcome, status, reason, attempts)
            for url, source, kind, outcome, status, reason, attempts in rows]
    if data:
        con.executemany("INSERT INTO fetch_attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT DO NOTHING", data)


def save_validators(con: duckdb.DuckDBPyConnection,
                    validators: dict[str, tuple[str | None, str | None, str | None]]) -> None:
    """Remember ETag / Last-Modified / body hash of feeds and sitemaps for the next conditional GET."""
    rows = [(u, e, lm, h, now()) for u, (e, lm, h) in validators.items()]
    if rows:
        con.executemany("INSERT INTO http_validators VALUES (?, ?, ?, ?, ?) ON CONFLICT (url) "
                        "DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified, "
                        "body_sha256 = excluded.body_sha256, checked_at = excluded.checked_at", rows)
