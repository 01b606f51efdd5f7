"""The DuckDB schema: versioned migrations and the stable views users query. Owns every DDL."""

from __future__ import annotations

import re
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
    # Dedupe state. The big tables have no primary key on purpose: rows of an article are
    # deleted and re-inserted when it is re-processed, and plain appends are what scales.
    Migration(version=3, name="dedupe tables and story views", sql="""
-- One row per article dedupe has processed: what it was signed from; dirty = re-clean it.
CREATE TABLE dedupe_articles (
    article_id    VARCHAR NOT NULL,
    site          VARCHAR NOT NULL,
    url_key       VARCHAR NOT NULL,
    canonical_key VARCHAR,
    text_hash     VARCHAR NOT NULL,
    shingles      INTEGER NOT NULL,
    extracted_at  TIMESTAMPTZ NOT NULL,
    processed_at  TIMESTAMPTZ NOT NULL,
    dirty         BOOLEAN NOT NULL DEFAULT FALSE
);
-- The distinct paragraph blocks of each page of a site (raw_text lines), for learning.
CREATE TABLE dedupe_blocks (
    site       VARCHAR NOT NULL,
    block_hash VARCHAR NOT NULL,
    article_id VARCHAR NOT NULL
);
-- Blocks learned as a site's boilerplate: stripped from article_records.text.
CREATE TABLE boilerplate_blocks (
    site       VARCHAR NOT NULL,
    block_hash VARCHAR NOT NULL,
    pages      INTEGER NOT NULL,
    sample     VARCHAR NOT NULL,
    learned_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site, block_hash)
);
-- MinHash LSH band keys: a new article meets every stored one sharing a bucket by a join.
CREATE TABLE lsh_bands (
    band       SMALLINT NOT NULL,
    bucket     BIGINT NOT NULL,
    article_id VARCHAR NOT NULL
);
-- Verified evidence that two articles tell one story (article_a < article_b).
CREATE TABLE dedupe_edges (
    article_a  VARCHAR NOT NULL,
    article_b  VARCHAR NOT NULL,
    method     VARCHAR NOT NULL,
    similarity DOUBLE NOT NULL
);
-- Each processed article's story, role and evidence.
CREATE TABLE story_membership (
    article_id   VARCHAR NOT NULL,
    story_id     VARCHAR NOT NULL,
    role         VARCHAR NOT NULL,
    similarity   DOUBLE NOT NULL,
    match_method VARCHAR NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE OR REPLACE VIEW story_members AS
SELECT m.story_id, m.article_id, a.url, a.source, m.role, m.similarity, m.match_method
FROM story_membership m JOIN article_records a USING (article_id);
CREATE OR REPLACE VIEW stories AS
SELECT m.story_id, m.article_id AS original_article_id, a.url AS original_url,
       a.source AS original_source, a.title, c.member_count, c.first_seen_at
FROM story_membership m
JOIN article_records a USING (article_id)
JOIN (SELECT sm.story_id, count(*) AS member_count, min(r.fetched_at) AS first_seen_at
      FROM story_membership sm JOIN article_records r USING (article_id)
      GROUP BY sm.story_id) c USING (story_id)
WHERE m.role = 'original';
"""),
    # Source health for the UI artifact, the hardened fetcher and users: a source is flagged when
    # 3 or more of its latest live (ingest) runs in a row failed. A failing run: every feed /
    # sitemap / listing exchange of the source failed, or it stored no new article and had
    # failures. last_failure_reason is the latest failed exchange of its latest failing run.
    Migration(version=4, name="source_health view", sql="""
CREATE OR REPLACE VIEW source_health AS
WITH live_runs AS (
    SELECT run_id, started_at, stats FROM runs WHERE flow = 'ingest'
),
-- Per (run, source) counters from the run's stats (written when the run finishes).
run_stats AS (
    SELECT r.run_id, s ->> 'source' AS source,
           CAST(s ->> 'new_articles' AS INTEGER) AS new_articles,
           CAST(s ->> 'failed' AS INTEGER) AS failed
    FROM live_runs r, unnest(CAST(json_extract(r.stats, '$.sources') AS JSON[])) AS t(s)
    WHERE r.stats IS NOT NULL
),
-- Per (run, source) HTTP exchanges (written as the run goes, so crashed runs count too).
exchanges AS (
    SELECT run_id, source,
           count(*) FILTER (WHERE kind = 'listing') AS listings,
           count(*) FILTER (WHERE kind = 'listing' AND outcome = 'failed') AS listings_failed,
           count(*) FILTER (WHERE outcome = 'failed') AS failed,
           arg_max(reason, attempted_at) FILTER (WHERE outcome = 'failed') AS last_reason
    FROM fetch_attempts WHERE run_id IN (SELECT run_id FROM live_runs) GROUP BY ALL
),
-- A failing run: every feed/listing exchange failed, or no new article and some failure.
per_run AS (
    SELECT COALESCE(s.run_id, e.run_id) AS run_id, COALESCE(s.source, e.source) AS source,
           e.last_reason,
           COALESCE(e.listings > 0 AND e.listings_failed = e.listings, FALSE)
           OR (COALESCE(s.new_articles, 0) = 0
               AND (COALESCE(s.failed, 0) > 0 OR COALESCE(e.failed, 0) > 0)) AS failing
    FROM run_stats s FULL OUTER JOIN exchanges e ON s.run_id = e.run_id AND s.source = e.source
),
timed AS (
    SELECT p.*, r.started_at FROM per_run p JOIN live_runs r USING (run_id)
),
summary AS (
    SELECT source, count(*) AS runs, max(started_at) AS last_run_at,
           max(started_at) FILTER (WHERE NOT failing) AS last_ok_run_at,
           arg_max(last_reason, started_at) FILTER (WHERE failing) AS last_failure_reason
    FROM timed GROUP BY source
),
streak AS (
    SELECT t.source, count(*) AS n
    FROM timed t JOIN summary su USING (source)
    WHERE t.failing AND (su.last_ok_run_at IS NULL OR t.started_at > su.last_ok_run_at)
    GROUP BY t.source
)
SELECT src.name AS source, src.enabled, COALESCE(su.runs, 0) AS runs, su.last_run_at,
       su.last_ok_run_at, COALESCE(st.n, 0) AS consecutive_failing_runs,
       COALESCE(st.n, 0) >= 3 AS flagged, su.last_failure_reason
FROM sources src
LEFT JOIN summary su ON su.source = src.name
LEFT JOIN streak st ON st.source = src.name;
"""),
    # How a raw body is kept, in body_codec: 'zstd' (level 1: less CPU than gzip level 1 in
    # the flow process, which shares the cores with the extraction workers, and smaller),
    # 'gzip' (rows stored before this migration), or 'warc': a WARC import leaves the body in
    # the WARC, and warc_file / warc_offset say where (body is empty). Copying
    # every body out of a WARC cost most of an import's writes and of the DB size.
    Migration(version=5, name="raw page storage", sql="""
ALTER TABLE raw_pages RENAME COLUMN body_gz TO body;
ALTER TABLE raw_pages ADD COLUMN body_codec VARCHAR DEFAULT 'gzip';
ALTER TABLE raw_pages ADD COLUMN warc_file VARCHAR;
ALTER TABLE raw_pages ADD COLUMN warc_offset BIGINT;
"""),
    # Provenance an aggregator page gives away, and a story's own date. attribution_url: the
    # article a "Reference:" / "Source:" / "Via" link on the page credits; credited_publisher:
    # the publisher a foreign copyright line names ("(c) 2023 Nexstar Media Inc."). A story's
    # published_at is its original's trusted date; a copy's date only when the original has none.
    Migration(version=6, name="provenance columns and story dates", sql="""
ALTER TABLE article_records ADD COLUMN attribution_url VARCHAR;
ALTER TABLE article_records ADD COLUMN credited_publisher VARCHAR;
CREATE OR REPLACE VIEW articles AS
SELECT a.article_id, a.url, a.canonical_url, a.source,
       COALESCE(s.publisher, a.source) AS publisher,
       COALESCE(s.kind, 'unknown')     AS source_kind,
       a.title, a.author, a.published_at, a.fetched_at, a.language, a.word_count, a.text,
       a.date_trusted, a.attribution_url, a.credited_publisher
FROM article_records a LEFT JOIN sources s ON s.name = a.source;
CREATE OR REPLACE VIEW stories AS
SELECT m.story_id, m.article_id AS original_article_id, a.url AS original_url,
       a.source AS original_source, a.title, c.member_count, c.first_seen_at,
       CASE WHEN a.date_trusted AND a.published_at IS NOT NULL THEN a.published_at
            ELSE c.first_trusted_date END AS published_at
FROM story_membership m
JOIN article_records a USING (article_id)
JOIN (SELECT sm.story_id, count(*) AS member_count, min(r.fetched_at) AS first_seen_at,
             min(r.published_at) FILTER (WHERE r.date_trusted) AS first_trusted_date
      FROM story_membership sm JOIN article_records r USING (article_id)
      GROUP BY sm.story_id) c USING (story_id)
WHERE m.role = 'original';
"""),
    # The reworded-copy stage's index (newsflow/dedupe/reworded.py). reworded_terms: each article's few
    # rarest content terms (stem hashes), with its fetch day and trusted publication day for
    # the time window; reworded_df: how many processed articles hold each term (IDF, and the
    # cap that keeps common terms out of lookups); reworded_links: the url_key of the article
    # an article's attribution link credits.
    Migration(version=7, name="reworded-copy index", sql="""
CREATE TABLE reworded_terms (
    term       BIGINT NOT NULL,
    article_id VARCHAR NOT NULL,
    fday       INTEGER NOT NULL,
    pday       INTEGER
);
CREATE TABLE reworded_df (
    term BIGINT PRIMARY KEY,
    df   INTEGER NOT NULL
);
CREATE TABLE reworded_links (
    article_id VARCHAR NOT NULL,
    target_key VARCHAR NOT NULL
);
"""),
    # 3xx response records of imported WARCs (CC-NEWS has many): not failures, and no page of
    # their own, but where they point tells which articles the archive holds only by reference.
    Migration(version=8, name="redirects of imported WARCs", sql="""
CREATE TABLE redirects (
    url      VARCHAR PRIMARY KEY,
    source   VARCHAR NOT NULL,
    status   INTEGER NOT NULL,
    location VARCHAR,
    seen_at  TIMESTAMPTZ NOT NULL
);
"""),
    Migration(version=9, name="boilerplate kept blocks", sql="""
-- Learned blocks set aside: forgotten by `newsflow boilerplate forget` (reason 'forget') or
-- matched by a source's sources.toml keep_blocks (reason 'keep_blocks'). A block here is never
-- learned again; a keep_blocks row goes when its entry leaves sources.toml.
CREATE TABLE boilerplate_kept (
    site       VARCHAR NOT NULL,
    block_hash VARCHAR NOT NULL,
    pages      INTEGER NOT NULL,
    sample     VARCHAR NOT NULL,
    learned_at TIMESTAMPTZ NOT NULL,
    reason     VARCHAR NOT NULL,
    kept_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site, block_hash)
);
-- Texts cleaned before learned blocks were kept inside stories lost those paragraphs: the
-- next dedupe cleans them again from raw_text.
UPDATE dedupe_articles SET dirty = TRUE WHERE NOT dirty AND article_id IN (
    SELECT article_id FROM dedupe_blocks SEMI JOIN boilerplate_blocks USING (site, block_hash));
"""),
]


def latest_version() -> int:
    """The schema version a fully migrated database has."""
    return max(m.version for m in MIGRATIONS)


# --- DuckLake: the same DDL without the constraints it lacks ------------------------------------

_TABLE = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+) \((.*?)\n\);", re.S)
_TABLE_KEY = re.compile(r",\s*PRIMARY KEY\s*\(([^)]*)\)")
_COLUMN_KEY = re.compile(r"^\s*(\w+)\s+[^,\n]*?\bPRIMARY KEY\b", re.M)


def lake_sql(sql: str) -> str:
    """A migration's SQL for DuckLake, which refuses PRIMARY KEY and UNIQUE: the one place they
    are stripped (writes keep keys unique by MERGE / anti-joins on table_keys() instead)."""
    sql = _TABLE_KEY.sub("", sql)
    return re.sub(r"[ \t]+(PRIMARY KEY|UNIQUE)\b", "", sql)


def table_keys(sql: str | None = None) -> dict[str, tuple[str, ...]]:
    """Each table's primary key columns, as the migrations (or sql) declare them."""
    keys: dict[str, tuple[str, ...]] = {}
    text = sql if sql is not None else "\n".join(m.sql for m in MIGRATIONS)
    for name, body in _TABLE.findall(text):
        composite = _TABLE_KEY.search(body)
        if composite:
            keys[name] = tuple(c.strip() for c in composite[1].split(","))
        elif column := _COLUMN_KEY.search(body):
            keys[name] = (column[1],)
    return keys
