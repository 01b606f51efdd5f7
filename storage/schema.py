"""The DuckDB schema: versioned migrations and the stable views users query. Owns every DDL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Migration:
    """One schema step, applied once, in a transaction, in version order."""

    version: int
    name: str
    sql: str


# All times are TIMESTAMPTZ (UTC). Tables are the write model; the views are the contract that
# users' ad hoc SQL relies on, so their names and columns never change without a new view name.
MIGRATIONS: list[Migration] = [
    Migration(version=1, name="core tables", sql="""
CREATE TABLE sources (
    name        VARCHAR PRIMARY KEY,
    publisher   VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,
    domains     VARCHAR[] NOT NULL,
    feeds       VARCHAR[],
    sitemaps    VARCHAR[],
    pages       VARCHAR[],
    enabled     BOOLEAN NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE runs (
    run_id      VARCHAR PRIMARY KEY,
    flow        VARCHAR NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status      VARCHAR NOT NULL,
    params      JSON,
    stats       JSON
);
-- One row per HTTP exchange outcome of a live run (pages, feeds, sitemaps, listing pages).
CREATE TABLE fetch_attempts (
    url          VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    run_id       VARCHAR NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL,
    kind         VARCHAR NOT NULL,
    outcome      VARCHAR NOT NULL,
    status       INTEGER,
    reason       VARCHAR,
    attempts     INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (url, run_id, kind)
);
-- The current failure state of each URL that produced no article; cleared when it succeeds.
CREATE TABLE failures (
    url             VARCHAR PRIMARY KEY,
    source          VARCHAR NOT NULL,
    stage           VARCHAR NOT NULL,
    reason          VARCHAR NOT NULL,
    detail          VARCHAR,
    last_status     INTEGER,
    transient       BOOLEAN NOT NULL,
    attempts        INTEGER NOT NULL,
    first_failed_at TIMESTAMPTZ NOT NULL,
    last_failed_at  TIMESTAMPTZ NOT NULL,
    next_retry_at   TIMESTAMPTZ
);
-- The raw HTTP body, gzip-compressed, so articles can be re-extracted after an upgrade.
CREATE TABLE raw_pages (
    url           VARCHAR PRIMARY KEY,
    source        VARCHAR NOT NULL,
    fetched_at    TIMESTAMPTZ NOT NULL,
    status        INTEGER NOT NULL,
    content_type  VARCHAR,
    final_url     VARCHAR,
    etag          VARCHAR,
    last_modified VARCHAR,
    body_sha256   VARCHAR NOT NULL,
    body_size     INTEGER NOT NULL,
    body_gz       BLOB NOT NULL
);
CREATE TABLE article_records (
    article_id    VARCHAR PRIMARY KEY,
    url           VARCHAR NOT NULL UNIQUE,
    source        VARCHAR NOT NULL,
    canonical_url VARCHAR,
    title         VARCHAR,
    author        VARCHAR,
    published_at  TIMESTAMPTZ,
    date_trusted  BOOLEAN NOT NULL,
    fetched_at    TIMESTAMPTZ NOT NULL,
    sitename      VARCHAR,
    language      VARCHAR,
    word_count    INTEGER NOT NULL,
    text          VARCHAR NOT NULL,
    raw_text      VARCHAR NOT NULL,
    links         VARCHAR[],
    extracted_at  TIMESTAMPTZ NOT NULL,
    extractor     VARCHAR NOT NULL
);
-- HTTP validators of feeds, sitemaps and listing pages, for conditional GET.
CREATE TABLE http_validators (
    url           VARCHAR PRIMARY KEY,
    etag          VARCHAR,
    last_modified VARCHAR,
    body_sha256   VARCHAR,
    checked_at    TIMESTAMPTZ NOT NULL
);
"""),
    Migration(version=2, name="articles view", sql="""
CREATE OR REPLACE VIEW articles AS
SELECT a.article_id, a.url, a.canonical_url, a.source,
       COALESCE(s.publisher, a.source) AS publisher,
       COALESCE(s.kind, 'unknown')     AS source_kind,
       a.title, a.author, a.published_at, a.fetched_at, a.language, a.word_count, a.text
FROM article_records a LEFT JOIN sources s ON s.name = a.source;
"""),
]


def latest_version() -> int:
    """The schema version a fully migrated database has."""
    return max(m.version for m in MIGRATIONS)
