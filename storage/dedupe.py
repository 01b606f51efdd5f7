"""Dedupe reads and writes: pending articles, site blocks, LSH band keys, edges and stories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np


def _now() -> datetime:
    return datetime.now(UTC)


def _insert_columns(con: duckdb.DuckDBPyConnection, table: str,
                    columns: dict[str, np.ndarray]) -> None:
    """Bulk insert numpy columns: a registered scan is ~20x faster than unnest of lists."""
    name = f"_new_{table}"
    con.register(name, columns)
    try:
        con.execute(f"INSERT INTO {table} SELECT {', '.join(columns)} FROM {name}")
    finally:
        con.unregister(name)


@dataclass(kw_only=True)
class PendingArticle:
    """An article dedupe has to (re)process, with what cleaning and election need."""

    article_id: str
    url: str
    source: str
    raw_text: str
    text: str
    canonical_url: str | None
    extracted_at: datetime
    known: bool  # processed before: its block rows and signatures are being replaced


def pending(con: duckdb.DuckDBPyConnection, limit: int) -> list[PendingArticle]:
    """Articles never processed, re-extracted since, or flagged dirty; oldest fetch first."""
    # Ids first, texts second: the texts of a 100k-article store are never scanned.
    ids = [r[0] for r in con.execute(
        "SELECT a.article_id FROM article_records a LEFT JOIN dedupe_articles d USING (article_id) "
        "WHERE d.article_id IS NULL OR d.dirty OR d.extracted_at <> a.extracted_at "
        "ORDER BY a.fetched_at, a.article_id LIMIT ?", [limit]).fetchall()]
    if not ids:
        return []
    rows = con.execute(
        "SELECT a.article_id, a.url, a.source, a.raw_text, a.text, a.canonical_url, "
        "a.extracted_at, a.article_id IN (SELECT article_id FROM dedupe_articles) "
        "FROM article_records a WHERE a.article_id IN (SELECT unnest(?)) "
        "ORDER BY a.fetched_at, a.article_id", [ids]).fetchall()
    return [PendingArticle(article_id=r[0], url=r[1], source=r[2], raw_text=r[3], text=r[4],
                           canonical_url=r[5], extracted_at=r[6], known=bool(r[7]))
            for r in rows]


def count_pending(con: duckdb.DuckDBPyConnection) -> int:
    """How many articles dedupe has to (re)process."""
    row = con.execute(
        "SELECT count(*) FROM article_records a LEFT JOIN dedupe_articles d USING (article_id) "
        "WHERE d.article_id IS NULL OR d.dirty OR d.extracted_at <> a.extracted_at").fetchone()
    return int(row[0]) if row else 0


# --- boilerplate -----------------------------------------------------------------------------


def replace_blocks(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str, str]],
                   article_ids: Sequence[str]) -> None:
    """Store the (site, block_hash, article_id) rows of these articles, replacing older ones."""
    if article_ids:
        con.execute("DELETE FROM dedupe_blocks WHERE article_id IN (SELECT unnest(?))",
                    [list(article_ids)])
    if rows:
        sites, hashes, ids = (np.array(c, dtype=object) for c in zip(*rows, strict=True))
        _insert_columns(con, "dedupe_blocks", {"site": sites, "block_hash": hashes,
                                               "article_id": ids})


def boilerplate_of(con: duckdb.DuckDBPyConnection, sites: Iterable[str]) -> dict[str, set[str]]:
    """Learned boilerplate block hashes per site."""
    out: dict[str, set[str]] = {s: set() for s in sites}
    if out:
        for site, h in con.execute("SELECT site, block_hash FROM boilerplate_blocks "
                                   "WHERE site IN (SELECT unnest(?))", [list(out)]).fetchall():
            out[site].add(h)
    return out


def site_block_counts(con: duckdb.DuckDBPyConnection, hashes: Sequence[str]
                      ) -> dict[tuple[str, str], int]:
    """(site, block) -> on how many pages of that site the block appears, for these blocks."""
    if not hashes:
        return {}
    rows = con.execute(
        "SELECT site, block_hash, count(DISTINCT article_id) FROM dedupe_blocks "
        "WHERE block_hash IN (SELECT unnest(?)) GROUP BY ALL", [list(hashes)]).fetchall()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def _pairs(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    firsts, seconds = [], []
    for a, b in pairs:
        firsts.append(a)
        seconds.append(b)
    return [firsts, seconds]


def pages_with_blocks(con: duckdb.DuckDBPyConnection, blocks: Sequence[tuple[str, str]],
                      limit: int) -> dict[tuple[str, str], list[str]]:
    """(site, block) -> up to limit pages of that site holding it, in a stable order."""
    out: dict[tuple[str, str], list[str]] = {b: [] for b in blocks}
    if not blocks:
        return out
    rows = con.execute(
        "WITH w AS (SELECT unnest($1) AS site, unnest($2) AS block_hash), "
        "d AS (SELECT DISTINCT site, block_hash, article_id FROM dedupe_blocks "
        "      JOIN w USING (site, block_hash)) "
        "SELECT site, block_hash, article_id FROM d QUALIFY row_number() OVER "
        "(PARTITION BY site, block_hash ORDER BY article_id) <= $3",
        [*_pairs(blocks), limit]).fetchall()
    for site, h, aid in sorted(rows):
        out[(site, h)].append(aid)
    return out


def blocks_of_pages(con: duckdb.DuckDBPyConnection, pages: Iterable[tuple[str, str]]
                    ) -> dict[tuple[str, str], set[str]]:
    """(site, article) -> the block hashes of that page."""
    out: dict[tuple[str, str], set[str]] = {p: set() for p in pages}
    if out:
        rows = con.execute(
            "WITH w AS (SELECT unnest($1) AS site, unnest($2) AS article_id) "
            "SELECT site, article_id, block_hash FROM dedupe_blocks JOIN w "
            "USING (site, article_id)", _pairs(out)).fetchall()
        for site, aid, h in rows:
            out[(site, aid)].add(h)
    return out


def block_counts(con: duckdb.DuckDBPyConnection, blocks: Iterable[tuple[str, str]]
                 ) -> dict[tuple[str, str], int]:
    """(site, block) -> on how many pages of that site the block appears."""
    wanted = set(blocks)
    if not wanted:
        return {}
    rows = con.execute(
        "WITH w AS (SELECT unnest($1) AS site, unnest($2) AS block_hash) "
        "SELECT site, block_hash, count(DISTINCT article_id) FROM dedupe_blocks "
        "JOIN w USING (site, block_hash) GROUP BY ALL", _pairs(wanted)).fetchall()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def learn_blocks(con: duckdb.DuckDBPyConnection, site: str,
                 learned: Sequence[tuple[str, int, str]]) -> None:
    """Record (block_hash, pages, sample) as boilerplate of site."""
    if not learned:
        return
    # One statement for the batch: executemany runs one statement per row (~3 ms each here).
    hashes, pages, samples = (list(c) for c in zip(*learned, strict=True))
    con.execute(
        "INSERT INTO boilerplate_blocks SELECT $1, unnest($2), unnest($3), unnest($4), $5 "
        "ON CONFLICT DO NOTHING", [site, hashes, pages, [x[:300] for x in samples], _now()])


def mark_dirty(con: duckdb.DuckDBPyConnection, site: str, blocks: Sequence[str],
               exclude: Sequence[str]) -> int:
    """Flag the processed pages of site holding any of blocks for re-cleaning; returns how many."""
    if not blocks:
        return 0
    row = con.execute(
        "UPDATE dedupe_articles SET dirty = TRUE WHERE NOT dirty AND article_id IN ("
        "SELECT article_id FROM dedupe_blocks WHERE site = $1 AND block_hash IN (SELECT unnest($2))"
        ") AND article_id NOT IN (SELECT unnest($3)) RETURNING article_id",
        [site, list(blocks), list(exclude) or [""]]).fetchall()
    return len(row)


def update_texts(con: duckdb.DuckDBPyConnection, texts: Sequence[tuple[str, str]]) -> None:
    """Write cleaned (article_id, text) pairs, and their word counts, to article_records."""
    if texts:
        ids, bodies = (list(c) for c in zip(*texts, strict=True))
        counts = [len(t.split()) for t in bodies]
        con.execute(
            "UPDATE article_records SET text = n.text, word_count = n.wc FROM ("
            "SELECT unnest($1) AS id, unnest($2) AS text, unnest($3) AS wc) n "
            "WHERE article_records.article_id = n.id", [ids, bodies, counts])


# --- candidates ------------------------------------------------------------------------------


def band_matches(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[int, int, str]],
                 exclude: Sequence[str]) -> list[tuple[str, str]]:
    """(new article, stored article) pairs sharing at least one LSH bucket."""
    if not rows:
        return []
    bands, buckets, ids = (list(c) for c in zip(*rows, strict=True))
    return con.execute(
        "WITH n AS (SELECT unnest($1) AS band, unnest($2) AS bucket, unnest($3) AS aid) "
        "SELECT DISTINCT n.aid, b.article_id FROM n JOIN lsh_bands b "
        "ON b.band = n.band AND b.bucket = n.bucket "
        "WHERE b.article_id NOT IN (SELECT unnest($4))",
        [bands, buckets, ids, list(exclude) or [""]]).fetchall()


def key_matches(con: duckdb.DuckDBPyConnection, url_keys: Sequence[str],
                canonical_keys: Sequence[str], text_hashes: Sequence[str],
                exclude: Sequence[str]) -> list[tuple[str, str, str | None, str]]:
    """Stored (article_id, url_key, canonical_key, text_hash) sharing any of these keys."""
    rows = con.execute(
        "SELECT article_id, url_key, canonical_key, text_hash FROM dedupe_articles "
        "WHERE (url_key IN (SELECT unnest($1)) OR url_key IN (SELECT unnest($2)) "
        "OR canonical_key IN (SELECT unnest($1)) OR canonical_key IN (SELECT unnest($2)) "
        "OR text_hash IN (SELECT unnest($3))) AND article_id NOT IN (SELECT unnest($4))",
        [list(url_keys) or [""], list(canonical_keys) or [""], list(text_hashes) or [""],
         list(exclude) or [""]]).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def texts_of(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(source, text) of stored articles."""
    ids = list(article_ids)
    if not ids:
        return {}
    rows = con.execute("SELECT article_id, source, text FROM article_records "
                       "WHERE article_id IN (SELECT unnest(?))", [ids]).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


# --- writes of a processed batch -------------------------------------------------------------


def replace_signatures(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[Any, ...]],
                       bands: Sequence[tuple[int, int, str]], replaced: Sequence[str]) -> None:
    """Store dedupe_articles rows and LSH band keys; those of `replaced` articles are dropped."""
    if not rows:
        return
    if replaced:
        con.execute("DELETE FROM dedupe_articles WHERE article_id IN (SELECT unnest(?))",
                    [list(replaced)])
        con.execute("DELETE FROM lsh_bands WHERE article_id IN (SELECT unnest(?))",
                    [list(replaced)])
    stamp = _now()
    cols = list(zip(*[(*r, stamp) for r in rows], strict=True))
    con.execute(
        "INSERT INTO dedupe_articles SELECT unnest($1), unnest($2), unnest($3), unnest($4), "
        "unnest($5), unnest($6), unnest($7), unnest($8), FALSE", [list(c) for c in cols])
    if bands:
        b, k, a = zip(*bands, strict=True)
        _insert_columns(con, "lsh_bands", {"band": np.array(b, dtype=np.int16),
                                           "bucket": np.array(k, dtype=np.int64),
                                           "article_id": np.array(a, dtype=object)})


def replace_edges(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str],
                  edges: Sequence[tuple[str, str, str, float]]) -> None:
    """Drop every edge touching these articles and store their newly verified ones."""
    if article_ids:
        con.execute("DELETE FROM dedupe_edges WHERE article_a IN (SELECT unnest($1)) "
                    "OR article_b IN (SELECT unnest($1))", [list(article_ids)])
    if edges:
        cols = [list(c) for c in zip(*edges, strict=True)]
        con.execute("INSERT INTO dedupe_edges SELECT unnest($1), unnest($2), unnest($3), "
                    "unnest($4)", cols)


def story_members_of(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                     ) -> dict[str, str]:
    """article_id -> story_id of every member of the stories these articles belong to."""
    ids = list(article_ids)
    if not ids:
        return {}
    rows = con.execute(
        "SELECT article_id, story_id FROM story_membership WHERE story_id IN ("
        "SELECT story_id FROM story_membership WHERE article_id IN (SELECT unnest(?)))",
        [ids]).fetchall()
    return {r[0]: r[1] for r in rows}


def edges_touching(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                   ) -> list[tuple[str, str, str, float]]:
    ids = list(article_ids)
    if not ids:
        return []
    rows = con.execute(
        "SELECT article_a, article_b, method, similarity FROM dedupe_edges "
        "WHERE article_a IN (SELECT unnest($1)) OR article_b IN (SELECT unnest($1))",
        [ids]).fetchall()
    return [(r[0], r[1], r[2], float(r[3])) for r in rows]


def member_rows(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                ) -> list[tuple[Any, ...]]:
    """(article_id, url, source_kind, fetched_at, canonical_url, links, published_at,
    date_trusted) of these articles, for election."""
    ids = list(article_ids)
    if not ids:
        return []
    return con.execute(
        "SELECT a.article_id, a.url, COALESCE(s.kind, 'unknown'), a.fetched_at, a.canonical_url, "
        "a.links, a.published_at, a.date_trusted FROM article_records a "
        "LEFT JOIN sources s ON s.name = a.source WHERE a.article_id IN (SELECT unnest(?))",
        [ids]).fetchall()


def replace_memberships(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str],
                        rows: Sequence[tuple[str, str, str, float, str]]) -> None:
    """Replace the story rows of these articles with (article_id, story_id, role, sim, method)."""
    if article_ids:
        con.execute("DELETE FROM story_membership WHERE article_id IN (SELECT unnest(?))",
                    [list(article_ids)])
    if rows:
        cols = [list(c) for c in zip(*rows, strict=True)]
        con.execute("INSERT INTO story_membership SELECT unnest($1), unnest($2), unnest($3), "
                    "unnest($4), unnest($5), $6", [*cols, _now()])


def memberships_of(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                   ) -> dict[str, tuple[str, str, float, str]]:
    """article_id -> (story_id, role, similarity, match_method) as stored."""
    ids = list(article_ids)
    if not ids:
        return {}
    rows = con.execute("SELECT article_id, story_id, role, similarity, match_method "
                       "FROM story_membership WHERE article_id IN (SELECT unnest(?))",
                       [ids]).fetchall()
    return {r[0]: (r[1], r[2], float(r[3]), r[4]) for r in rows}


def newest_stories(con: duckdb.DuckDBPyConnection, limit: int) -> list[tuple[Any, ...]]:
    """(story_id, original_url, original_source, title, member_count, first_seen_at) of the
    most recently seen stories with copies first."""
    return con.execute(
        "SELECT story_id, original_url, original_source, title, member_count, first_seen_at "
        "FROM stories ORDER BY member_count > 1 DESC, first_seen_at DESC, story_id LIMIT ?",
        [limit]).fetchall()


def copies_of(con: duckdb.DuckDBPyConnection, story_ids: Sequence[str]
              ) -> list[tuple[Any, ...]]:
    """(story_id, url, source, role, similarity, match_method) of these stories' copies."""
    if not story_ids:
        return []
    return con.execute(
        "SELECT story_id, url, source, role, similarity, match_method FROM story_members "
        "WHERE story_id IN (SELECT unnest(?)) AND role = 'copy' ORDER BY story_id, url",
        [list(story_ids)]).fetchall()
