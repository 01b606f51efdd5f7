"""The reworded-copy stage's reads and writes: term postings, document frequencies, attribution links."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import numpy as np

from newsflow.dedupe.types import RewordedRows
from storage import lake
from storage.batch import drop_temp, in_values, insert_rows, temp_table


def reworded_meta(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]
                  ) -> dict[str, tuple[str | None, datetime | None, bool, datetime]]:
    """article_id -> (attribution_url, published_at, date_trusted, fetched_at)."""
    if not article_ids:
        return {}
    sub, param = in_values(article_ids)
    rows = con.execute("SELECT article_id, attribution_url, published_at, date_trusted, "
                       f"fetched_at FROM article_records WHERE article_id IN {sub}",
                       [param]).fetchall()
    return {r[0]: (r[1], r[2], bool(r[3]), r[4]) for r in rows}


def processed_count(con: duckdb.DuckDBPyConnection) -> int:
    """How many articles dedupe has processed (the N of document frequencies)."""
    row = con.execute("SELECT count(*) FROM dedupe_articles").fetchone()
    return int(row[0]) if row else 0


def term_df(con: duckdb.DuckDBPyConnection, terms: np.ndarray) -> dict[int, int]:
    """Stored document frequency of these terms (int64 stem hashes); absent terms are left out."""
    if not len(terms):
        return {}
    con.register("_q_terms", {"term": terms})
    try:
        rows = con.execute("SELECT d.term, d.df FROM reworded_df d "
                           "SEMI JOIN _q_terms q USING (term)").fetchall()
    finally:
        con.unregister("_q_terms")
    return {int(r[0]): int(r[1]) for r in rows}


def term_matches(con: duckdb.DuckDBPyConnection, terms: np.ndarray, idx: np.ndarray,
                 fday: np.ndarray, pday: np.ndarray, window: int, min_shared: int
                 ) -> list[tuple[int, str, list[int]]]:
    """(batch position, stored article, shared terms) of stored articles sharing at least
    min_shared of a batch article's index terms within `window` days of it, by fetch day or
    trusted publication day (pday < 0: none); the batch's own rows are left out (needs
    batch_view)."""
    if not len(idx):
        return []
    con.register("_q_post", {"term": terms, "idx": idx, "fday": fday, "pday": pday})
    try:
        rows = con.execute(
            "SELECT q.idx, t.article_id, list(q.term) FROM _q_post q "
            "JOIN reworded_terms t USING (term) "
            "WHERE (abs(t.fday - q.fday) <= $1 OR (q.pday >= 0 AND abs(t.pday - q.pday) <= $1)) "
            "AND t.article_id NOT IN (SELECT article_id FROM _batch) "
            "GROUP BY q.idx, t.article_id HAVING count(*) >= $2",
            [window, min_shared]).fetchall()
    finally:
        con.unregister("_q_post")
    return [(int(r[0]), r[1], [int(t) for t in r[2]]) for r in rows]


def attribution_matches(con: duckdb.DuckDBPyConnection, target_keys: Sequence[str],
                        own_keys: Sequence[str]) -> list[tuple[str, str, str]]:
    """Stored articles tied to the batch by an attribution link, the batch's own left out
    (needs batch_view): ('to', url_key, article) for stored articles at target_keys, and
    ('from', target_key, article) for stored articles whose link credits one of own_keys."""
    temp_table(con, "_att", {"k": target_keys or [""]})
    temp_table(con, "_own", {"k": own_keys or [""]})
    try:
        return [(r[0], r[1], r[2]) for r in con.execute(
            "SELECT 'to', url_key, article_id FROM dedupe_articles "
            "WHERE url_key IN (SELECT k FROM _att WHERE k IS NOT NULL) "
            "AND article_id NOT IN (SELECT article_id FROM _batch) "
            "UNION ALL SELECT 'from', target_key, article_id FROM reworded_links "
            "WHERE target_key IN (SELECT k FROM _own WHERE k IS NOT NULL) "
            "AND article_id NOT IN (SELECT article_id FROM _batch)").fetchall()]
    finally:
        drop_temp(con, "_att")
        drop_temp(con, "_own")


def replace_reworded(con: duckdb.DuckDBPyConnection, rows: RewordedRows) -> None:
    """Store the batch's postings and attribution links, replacing older ones, and add its
    new articles' terms to the document frequencies (needs batch_view)."""
    con.execute("DELETE FROM reworded_terms WHERE article_id IN (SELECT article_id FROM _batch)")
    con.execute("DELETE FROM reworded_links WHERE article_id IN (SELECT article_id FROM _batch)")
    if len(rows.idx):
        insert_rows(con, "_new_terms", {"term": rows.terms, "idx": rows.idx, "fday": rows.fday,
                                        "pday": rows.pday},
                    "INSERT INTO reworded_terms SELECT n.term, b.article_id, n.fday, "
                    "NULLIF(n.pday, -1) FROM _new_terms n JOIN _batch b USING (idx)")
    if rows.links:
        ids, keys = (list(c) for c in zip(*rows.links, strict=True))
        temp_table(con, "_links", {"a": ids, "k": keys})
        con.execute("INSERT INTO reworded_links SELECT a, k FROM _links")
        drop_temp(con, "_links")
    if len(rows.df_terms):
        con.register("_df", {"term": rows.df_terms, "n": rows.df_add})
        try:
            lake.insert(con, "reworded_df", "SELECT term, n FROM _df", None,
                        "ON CONFLICT (term) DO UPDATE SET df = reworded_df.df + excluded.df")
        finally:
            con.unregister("_df")
