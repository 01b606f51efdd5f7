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
from storage import lake

EXTRACTOR = "trafilatura"
# HTTP attempts over all runs after which a transiently failing URL counts as permanently failed
# (with the backoff below, about two weeks of daily retries).
GIVE_UP_ATTEMPTS = 30
# Raw pages are kept for re-extraction, not served, and compressed in the flow process, which
# shares the cores with the extraction workers: zstd level 1 costs a third of gzip level 1's
# CPU for fewer bytes (docs/performance.md; storage/reads.py reads both).
ZSTD_LEVEL = 1
BODY_CODEC = "zstd"
# Rows per multi-row INSERT: ~20 columns each stays far below DuckDB's parameter limits.
_INSERT_CHUNK = 500


def now() -> datetime:
    return datetime.now(UTC)


def insert_values(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[tuple[Any, ...]],
                  conflict: str) -> None:
    """INSERT rows as multi-row VALUES statements: executemany runs one statement per row and
    cost several times the CPU for a batch of raw pages. Within one statement a repeated
    key keeps its FIRST row, even with DO UPDATE: callers pass distinct keys where it matters."""
    if not rows:
        return
    one = "(" + ", ".join("?" * len(rows[0])) + ")"
    for i in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[i:i + _INSERT_CHUNK]
        lake.insert(con, table, f"VALUES {', '.join([one] * len(chunk))}",
                    [v for row in chunk for v in row], conflict)


# The sources table's columns after name, as source_fields spells them (reads.sources_match
# compares the same columns).
SOURCE_FIELDS = "publisher, kind, domains, feeds, sitemaps, pages, enabled"
# The sources table's columns and types, for loading rows from one JSON document.
_SOURCE_JSON_TYPES = json.dumps({"name": "VARCHAR", "publisher": "VARCHAR", "kind": "VARCHAR",
                                 "domains": "VARCHAR[]", "feeds": "VARCHAR[]",
                                 "sitemaps": "VARCHAR[]", "pages": "VARCHAR[]",
                                 "enabled": "BOOLEAN"})
_SOURCE_CHUNK = 1000  # sources per statement: the JSON document and its parse stay small


def source_fields(s: Source) -> tuple[Any, ...]:
    """One source's row in the sources table, between its name and the update time."""
    return (s.publisher, s.kind, list(s.domains), list(s.feeds), list(s.sitemaps), list(s.pages),
            s.enabled)


def changed_sources(con: duckdb.DuckDBPyConnection, registry: Registry) -> list[Source]:
    """The sources of registry that the sources table lacks or holds differently."""
    try:  # the whole (small) table: binding thousands of names as a list cost more than it
        rows = con.execute(f"SELECT name, {SOURCE_FIELDS} FROM sources").fetchall()
    except duckdb.CatalogException:  # a database from before the sources table
        return list(registry.sources)
    have = {r[0]: tuple(r[1:]) for r in rows}
    return [s for s in registry.sources if have.get(s.name) != source_fields(s)]


def upsert_sources(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    """Mirror the registry into the sources table (so the articles view can join on it).

    Set-based: only new or changed sources are written, in two statements whatever their
    number. A per-row INSERT ... ON CONFLICT keeps a few hundred KB of transaction-local
    blocks per statement until the commit, which ran a writer out of memory on a registry of
    a few hundred sources; and the rows travel as one JSON string, since DuckDB's Python client
    converts a list parameter value by value.
    """
    todo = changed_sources(con, registry)
    stamp = now()
    for i in range(0, len(todo), _SOURCE_CHUNK):  # bounded memory for any registry size
        chunk = todo[i:i + _SOURCE_CHUNK]
        doc = json.dumps([{"name": s.name, "publisher": s.publisher, "kind": s.kind,
                           "domains": list(s.domains), "feeds": list(s.feeds),
                           "sitemaps": list(s.sitemaps), "pages": list(s.pages),
                           "enabled": s.enabled} for s in chunk])
        con.execute("DELETE FROM sources WHERE name IN "
                    "(SELECT unnest(from_json(?, '[\"VARCHAR\"]')))",
                    [json.dumps([s.name for s in chunk])])
        con.execute(
            "INSERT INTO sources SELECT r.name, r.publisher, r.kind, r.domains, r.feeds, "
            "r.sitemaps, r.pages, r.enabled, ? "
            f"FROM (SELECT unnest(from_json(?, '[{_SOURCE_JSON_TYPES}]')) AS r)", [stamp, doc])


def skip_shutdown_checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    """Let this connection close without a checkpoint (the caller's later transaction makes one)."""
    con.execute("PRAGMA disable_checkpoint_on_shutdown")


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, flow: str, params: dict[str, Any]) -> None:
    """Record a run; a re-run under the same id (a re-import) updates its row instead of adding one."""
    lake.insert(
        con, "runs", "VALUES (?, ?, ?, NULL, 'running', ?, NULL)",
        [run_id, flow, now(), json.dumps(params, default=str)],
        "ON CONFLICT (run_id) DO UPDATE "
        "SET started_at = excluded.started_at, finished_at = NULL, status = 'running'")


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
    # several times the insert itself with these big rows (docs/performance.md).
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
    """Upsert each URL's failure state (reason, attempts, last status, next retry).

    Multi-row statements, not one INSERT ... ON CONFLICT per URL: each such statement keeps a
    few hundred KB of transaction-local blocks until the commit (see upsert_sources).
    """
    failures = list(failures)
    if not failures:
        return 0
    have = dict(con.execute("SELECT url, attempts FROM failures WHERE url IN (SELECT unnest(?))",
                            [list({f.url for f in failures})]).fetchall())
    stamp = now()
    rows: dict[str, tuple[Any, ...]] = {}  # one row per URL: its attempts add up, the last wins
    for f in failures:
        attempts = int(have.get(f.url) or 0) + max(f.attempts, 1)
        have[f.url] = attempts
        if f.transient and attempts >= GIVE_UP_ATTEMPTS:  # stop retrying a URL that never recovers
            f = replace(f, transient=False,
                        detail=f"gave up after {attempts} attempts; last: {f.detail}")
        rows[f.url] = (f.url, f.source, f.stage, f.reason, f.detail[:2000], f.status, f.transient,
                       attempts, stamp, stamp, retry_after(f, attempts))
    insert_values(
        con, "failures", list(rows.values()),
        "ON CONFLICT (url) DO UPDATE "
        "SET stage = excluded.stage, reason = excluded.reason, detail = excluded.detail, "
        "last_status = excluded.last_status, transient = excluded.transient, "
        "attempts = excluded.attempts, last_failed_at = excluded.last_failed_at, "
        "next_retry_at = excluded.next_retry_at")
    return len(failures)


def record_import_failures(con: duckdb.DuckDBPyConnection, failures: Iterable[Failure]) -> None:
    """Failures of a WARC import: the same record fails the same way, so keep one row, unchanged."""
    stamp = now()
    rows = [(f.url, f.source, f.stage, f.reason, f.detail[:2000], f.status, f.transient,
             max(f.attempts, 1), stamp, stamp, None) for f in failures]
    insert_values(con, "failures", rows, "ON CONFLICT (url) DO NOTHING")


def record_redirects(con: duckdb.DuckDBPyConnection,
                     rows: Sequence[tuple[str, str, int, str | None]]) -> None:
    """Upsert (url, source, status, location) of 3xx response records; the latest seen wins."""
    stamp = now()
    latest = {url: (url, source, status, location, stamp) for url, source, status, location in rows}
    insert_values(con, "redirects", list(latest.values()),
                  "ON CONFLICT (url) DO UPDATE SET source = excluded.source, "
                  "status = excluded.status, location = excluded.location, "
                  "seen_at = excluded.seen_at")


def record_attempts(con: duckdb.DuckDBPyConnection, run_id: str,
                    rows: Iterable[tuple[str, str, str, str, int | None, str | None, int]]) -> None:
    """Log (url, source, kind, outcome, status, reason, attempts) exchanges of a live run."""
    stamp = now()
    data = [(url, source, run_id, stamp, kind, outcome, status, reason, attempts)
            for url, source, kind, outcome, status, reason, attempts in rows]
    # Multi-row statements (see record_failures); a repeated key keeps its first row, as before.
    insert_values(con, "fetch_attempts", data, "ON CONFLICT DO NOTHING")


def save_validators(con: duckdb.DuckDBPyConnection,
                    validators: dict[str, tuple[str | None, str | None, str | None]]) -> None:
    """Remember ETag / Last-Modified / body hash of feeds and sitemaps for the next conditional GET."""
    rows = [(u, e, lm, h, now()) for u, (e, lm, h) in validators.items()]
    insert_values(con, "http_validators", rows,  # multi-row statements: see record_failures
                  "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, "
                  "last_modified = excluded.last_modified, body_sha256 = excluded.body_sha256, "
                  "checked_at = excluded.checked_at")


def reset_failures(con: duckdb.DuckDBPyConnection, source: str | None = None,
                   reason: str | None = None) -> int:
    """Make failed URLs (of a source, with a reason) due again: transient, due now, attempts
    counted afresh. Returns how many were reset."""
    where = "WHERE ($1 IS NULL OR source = $1) AND ($2 IS NULL OR reason = $2)"
    if lake.is_lake_con(con):  # no RETURNING on a lake: count, then update (one transaction)
        row = con.execute(f"SELECT count(*) FROM failures {where}", [source, reason]).fetchone()
        con.execute("UPDATE failures SET transient = TRUE, next_retry_at = $3, attempts = 0 "
                    f"{where}", [source, reason, now()])
        return int(row[0]) if row else 0
    rows = con.execute(
        f"UPDATE failures SET transient = TRUE, next_retry_at = $3, attempts = 0 {where} "
        "RETURNING url", [source, reason, now()]).fetchall()
    return len(rows)
