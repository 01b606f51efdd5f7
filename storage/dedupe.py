"""Dedupe reads and writes: pending articles, LSH band keys, edges and stories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np

from storage.batch import EPOCH, MICRO, drop_temp, in_values, insert_rows, now, temp_table
from storage.reads import PENDING_FROM


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


def pending(con: duckdb.DuckDBPyConnection, limit: int, max_words: int | None = None
            ) -> list[PendingArticle]:
    """Articles never processed, re-extracted since, or flagged dirty; oldest fetch first.

    max_words: stop once the articles taken hold this many words (at least one is taken).
    """
    # Ids first, texts second: the texts of a 100k-article store are never scanned.
    ids = [r[0] for r in con.execute(
        "SELECT article_id FROM (SELECT a.article_id, a.fetched_at, a.word_count, "
        "sum(a.word_count) OVER (ORDER BY a.fetched_at, a.article_id ROWS UNBOUNDED PRECEDING) "
        f"AS running {PENDING_FROM}) "
        "WHERE running - word_count < ? ORDER BY fetched_at, article_id LIMIT ?",
        [max_words if max_words is not None else 2**62, limit]).fetchall()]
    if not ids:
        return []
    sub, param = in_values(ids)
    # The cleaned text only where it differs from the raw one: a page never cleaned has both
    # equal (the import stores the text twice), and two copies of every text were a third of
    # the rows' memory, in DuckDB's result and as Python strings.
    rows = con.execute(
        "SELECT a.article_id, a.url, a.source, a.raw_text, "
        "CASE WHEN a.text IS NOT DISTINCT FROM a.raw_text THEN NULL ELSE a.text END, "
        "a.text IS NOT DISTINCT FROM a.raw_text, a.canonical_url, "
        "a.extracted_at, a.article_id IN (SELECT article_id FROM dedupe_articles) "
        f"FROM article_records a WHERE a.article_id IN {sub}", [param]).fetchall()
    # In the order of ids (fetch time, id) by Python: an ORDER BY made DuckDB hold the whole
    # batch's texts at once in its buffer pool to sort them (out of memory at a writer's cap).
    at = {aid: n for n, aid in enumerate(ids)}
    rows.sort(key=lambda r: at[r[0]])
    return [PendingArticle(article_id=r[0], url=r[1], source=r[2], raw_text=r[3],
                           text=r[3] if r[5] else r[4], canonical_url=r[6], extracted_at=r[7],
                           known=bool(r[8])) for r in rows]


def count_pending(con: duckdb.DuckDBPyConnection) -> int:
    """How many articles dedupe has to (re)process."""
    row = con.execute(f"SELECT count(*) {PENDING_FROM}").fetchone()
    return int(row[0]) if row else 0


# --- candidates ------------------------------------------------------------------------------


def band_matches(con: duckdb.DuckDBPyConnection, bands: np.ndarray, buckets: np.ndarray,
                 idx: np.ndarray) -> list[tuple[int, str]]:
    """(batch position, stored article) pairs sharing at least one LSH bucket (needs
    batch_view; the batch's own stored rows, if re-processed, are left out)."""
    if not len(idx):
        return []
    con.register("_new_bands", {"band": bands, "bucket": buckets, "idx": idx})
    try:
        return con.execute(
            "SELECT DISTINCT n.idx, b.article_id FROM _new_bands n JOIN lsh_bands b "
            "ON b.band = n.band AND b.bucket = n.bucket "
            "WHERE b.article_id NOT IN (SELECT article_id FROM _batch)").fetchall()
    finally:
        con.unregister("_new_bands")


def key_matches(con: duckdb.DuckDBPyConnection, url_keys: Sequence[str],
                canonical_keys: Sequence[str], text_hashes: Sequence[str]
                ) -> list[tuple[str, str, str | None, str]]:
    """Stored (article_id, url_key, canonical_key, text_hash) sharing any of these keys, the
    batch's own rows left out (needs batch_view)."""
    temp_table(con, "_keys", {"k": [*url_keys, *canonical_keys]})
    temp_table(con, "_hashes", {"h": text_hashes})
    rows = con.execute(
        "SELECT article_id, url_key, canonical_key, text_hash FROM dedupe_articles "
        "WHERE (url_key IN (SELECT k FROM _keys) OR canonical_key IN (SELECT k FROM _keys) "
        "OR text_hash IN (SELECT h FROM _hashes)) "
        "AND article_id NOT IN (SELECT article_id FROM _batch)").fetchall()
    drop_temp(con, "_keys")
    drop_temp(con, "_hashes")
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def texts_of(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(source, text) of stored articles."""
    ids = list(article_ids)
    if not ids:
        return {}
    sub, param = in_values(ids)
    rows = con.execute("SELECT article_id, source, text FROM article_records "
                       f"WHERE article_id IN {sub}", [param]).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


# --- writes of a processed batch -------------------------------------------------------------


def replace_signatures(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[Any, ...]],
                       bands: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Store the batch's dedupe_articles rows (article_id, site, url_key, canonical_key,
    text_hash, shingles, extracted_at) and LSH band keys (band, bucket, batch position),
    replacing any older ones (needs batch_view)."""
    if not rows:
        return
    # Every page of the batch: rows of a run stopped half-way must not be doubled.
    con.execute("DELETE FROM dedupe_articles WHERE article_id IN (SELECT article_id FROM _batch)")
    con.execute("DELETE FROM lsh_bands WHERE article_id IN (SELECT article_id FROM _batch)")
    cols = list(zip(*rows, strict=True))
    # Timestamps as epoch microseconds: converting datetime objects one by one is slow.
    micros = np.array([((t if t.tzinfo else t.replace(tzinfo=UTC)) - EPOCH) // MICRO
                       for t in cols[6]], dtype=np.int64)
    temp_table(con, "_sigs", {"article_id": cols[0], "site": cols[1], "url_key": cols[2],
                              "canonical_key": cols[3], "text_hash": cols[4]},
               {"shingles": np.array(cols[5], dtype=np.int32), "micros": micros})
    con.execute("INSERT INTO dedupe_articles SELECT article_id, site, url_key, canonical_key, "
                "text_hash, shingles, to_timestamp(0) + to_microseconds(micros), ?, FALSE "
                "FROM _sigs", [now()])
    drop_temp(con, "_sigs")
    band, bucket, idx = bands
    if len(idx):
        insert_rows(con, "_new_bands", {"band": band, "bucket": bucket, "idx": idx},
                    "INSERT INTO lsh_bands SELECT n.band, n.bucket, b.article_id "
                    "FROM _new_bands n JOIN _batch b USING (idx)")


def replace_edges(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str],
                  edges: Sequence[tuple[str, str, str, float]]) -> None:
    """Drop every edge touching these articles and store their newly verified ones."""
    if article_ids:
        sub, param = in_values(article_ids)
        con.execute(f"DELETE FROM dedupe_edges WHERE article_a IN {sub} OR article_b IN {sub}",
                    [param, param])
    if edges:
        a, b, method, sim = zip(*edges, strict=True)
        temp_table(con, "_edges", {"a": a, "b": b, "m": method},
                   {"s": np.array(sim, dtype=np.float64)})
        con.execute("INSERT INTO dedupe_edges SELECT a, b, m, s FROM _edges")
        drop_temp(con, "_edges")


def story_members_of(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                     ) -> dict[str, str]:
    """article_id -> story_id of every member of the stories these articles belong to."""
    ids = list(article_ids)
    if not ids:
        return {}
    sub, param = in_values(ids)
    rows = con.execute(
        "SELECT article_id, story_id FROM story_membership WHERE story_id IN ("
        f"SELECT story_id FROM story_membership WHERE article_id IN {sub})", [param]).fetchall()
    return {r[0]: r[1] for r in rows}


def edges_touching(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                   ) -> list[tuple[str, str, str, float]]:
    """Stored (article_a, article_b, method, similarity) edges touching these articles."""
    ids = list(article_ids)
    if not ids:
        return []
    sub, param = in_values(ids)
    rows = con.execute(
        "SELECT article_a, article_b, method, similarity FROM dedupe_edges "
        f"WHERE article_a IN {sub} OR article_b IN {sub}", [param, param]).fetchall()
    return [(r[0], r[1], r[2], float(r[3])) for r in rows]


def member_rows(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                ) -> list[tuple[Any, ...]]:
    """(article_id, url, source_kind, fetched_at, canonical_url, links, published_at,
    date_trusted, attribution_url, credited_publisher, publisher, sitename) of these
    articles, for election (publisher: the source's, None for unlisted sites)."""
    ids = list(article_ids)
    if not ids:
        return []
    sub, param = in_values(ids)
    return con.execute(
        "SELECT a.article_id, a.url, COALESCE(s.kind, 'unknown'), a.fetched_at, a.canonical_url, "
        "a.links, a.published_at, a.date_trusted, a.attribution_url, a.credited_publisher, "
        "s.publisher, a.sitename FROM article_records a "
        f"LEFT JOIN sources s ON s.name = a.source WHERE a.article_id IN {sub}",
        [param]).fetchall()


def replace_memberships(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str],
                        rows: Sequence[tuple[str, str, str, float, str]]) -> None:
    """Replace the story rows of these articles with (article_id, story_id, role, sim, method)."""
    if article_ids:
        sub, param = in_values(article_ids)
        con.execute(f"DELETE FROM story_membership WHERE article_id IN {sub}", [param])
    if rows:
        aid, sid, role, sim, method = zip(*rows, strict=True)
        temp_table(con, "_members", {"a": aid, "s": sid, "r": role, "m": method},
                   {"x": np.array(sim, dtype=np.float64)})
        con.execute("INSERT INTO story_membership SELECT a, s, r, x, m, ? FROM _members",
                    [now()])
        drop_temp(con, "_members")


def memberships_of(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                   ) -> dict[str, tuple[str, str, float, str]]:
    """article_id -> (story_id, role, similarity, match_method) as stored."""
    ids = list(article_ids)
    if not ids:
        return {}
    sub, param = in_values(ids)
    rows = con.execute("SELECT article_id, story_id, role, similarity, match_method "
                       f"FROM story_membership WHERE article_id IN {sub}", [param]).fetchall()
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
