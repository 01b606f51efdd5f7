"""Boilerplate reads and writes: each site's text blocks, the learned ones, the blocks set aside."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np

from storage import lake
from storage.batch import HEX, drop_temp, in_values, insert_rows, now, temp_table


def replace_blocks(con: duckdb.DuckDBPyConnection, idx: np.ndarray, hashes: np.ndarray) -> None:
    """Store the blocks of the batch's pages (needs batch_view), replacing any older rows.

    idx: int32 position of the page in the batch; hashes: uint64 value of each block hash.
    """
    # Every page of the batch, not only re-processed ones: a run that stopped between its
    # prepare and write steps left block rows of pages that look new to the next run.
    con.execute("DELETE FROM dedupe_blocks WHERE article_id IN (SELECT article_id FROM _batch)")
    if len(idx):
        insert_rows(con, "_new_blocks", {"idx": idx, "h": hashes},
                    "INSERT INTO dedupe_blocks SELECT b.site, "
                    f"{HEX.format('n.h')}, b.article_id FROM _new_blocks n JOIN _batch b USING (idx)")


def boilerplate_of(con: duckdb.DuckDBPyConnection, sites: Iterable[str]) -> dict[str, set[str]]:
    """Learned boilerplate block hashes per site."""
    out: dict[str, set[str]] = {s: set() for s in sites}
    if out:
        for site, h in con.execute("SELECT site, block_hash FROM boilerplate_blocks "
                                   "WHERE site IN (SELECT unnest(?))", [list(out)]).fetchall():
            out[site].add(h)
    return out


@dataclass(kw_only=True, frozen=True)
class BlockCandidate:
    """A block of the batch's pages, not yet boilerplate, on enough pages of its site."""

    site: str
    block_hash: str
    pages: int  # how many pages of the site hold it
    sample: tuple[str, ...]  # up to `sample` of those pages, by article id


def block_candidates(con: duckdb.DuckDBPyConnection, min_pages: int, sample: int
                     ) -> list[BlockCandidate]:
    """Blocks of the batch's pages (needs batch_view) on >= min_pages pages of their site that
    are not boilerplate yet, each with a stable sample of the pages holding it."""
    rows = con.execute(
        "WITH mine AS (SELECT DISTINCT d.site, d.block_hash FROM dedupe_blocks d "
        "              JOIN _batch b USING (article_id)), "
        "cand AS (SELECT site, block_hash FROM mine "
        "         ANTI JOIN boilerplate_blocks k USING (site, block_hash) "
        "         ANTI JOIN boilerplate_kept x USING (site, block_hash)), "
        "hits AS (SELECT DISTINCT site, block_hash, article_id FROM dedupe_blocks "
        "         SEMI JOIN cand USING (site, block_hash)) "
        "SELECT site, block_hash, count(*), list(article_id ORDER BY article_id)[1:$2] "
        "FROM hits GROUP BY site, block_hash HAVING count(*) >= $1",
        [min_pages, sample]).fetchall()
    return [BlockCandidate(site=r[0], block_hash=r[1], pages=int(r[2]), sample=tuple(r[3]))
            for r in rows]


def raw_texts(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]) -> dict[str, str]:
    """article_id -> raw_text (extraction output, before boilerplate stripping)."""
    ids = sorted(set(article_ids))
    if not ids:
        return {}
    sub, param = in_values(ids)
    rows = con.execute(f"SELECT article_id, raw_text FROM article_records WHERE article_id IN {sub}",
                       [param]).fetchall()
    return {r[0]: r[1] for r in rows}


def learn_blocks(con: duckdb.DuckDBPyConnection,
                 learned: Sequence[tuple[str, str, int, str]]) -> None:
    """Record (site, block_hash, pages, sample) rows as boilerplate."""
    if not learned:
        return
    sites, hashes, pages, samples = (list(c) for c in zip(*learned, strict=True))
    temp_table(con, "_learned", {"site": sites, "block_hash": hashes,
                                 "sample": [x[:300] for x in samples]},
               {"pages": np.array(pages, dtype=np.int32)})
    lake.insert(con, "boilerplate_blocks", "SELECT site, block_hash, pages, "
                "COALESCE(sample, ''), ? FROM _learned", [now()], "ON CONFLICT DO NOTHING")
    drop_temp(con, "_learned")


def mark_dirty(con: duckdb.DuckDBPyConnection, blocks: Sequence[tuple[str, str]], *,
               batch: bool = True) -> int:
    """Flag the processed pages holding any of these (site, block) pairs for re-cleaning, in
    one statement; returns how many. batch: only pages outside the batch (needs batch_view)."""
    if not blocks:
        return 0
    sites, hashes = (list(c) for c in zip(*blocks, strict=True))
    temp_table(con, "_dirty", {"site": sites, "block_hash": hashes})
    outside = "AND article_id NOT IN (SELECT article_id FROM _batch) " if batch else ""
    where = ("WHERE NOT dirty AND article_id IN (SELECT article_id FROM dedupe_blocks "
             f"SEMI JOIN _dirty USING (site, block_hash)) {outside}")
    if lake.is_lake_con(con):  # no RETURNING on a lake: count, then update (one transaction)
        row = con.execute(f"SELECT count(*) FROM dedupe_articles {where}").fetchone()
        con.execute(f"UPDATE dedupe_articles SET dirty = TRUE {where}")
        drop_temp(con, "_dirty")
        return int(row[0]) if row else 0
    rows = con.execute(f"UPDATE dedupe_articles SET dirty = TRUE {where}RETURNING article_id"
                       ).fetchall()
    drop_temp(con, "_dirty")
    return len(rows)


# --- blocks set aside: forgotten by a user, or on a source's allow-list ----------------------

KEPT_BY_FORGET = "forget"  # `newsflow boilerplate forget`
KEPT_BY_LIST = "keep_blocks"  # sources.toml keep_blocks


@dataclass(kw_only=True, frozen=True)
class BlockRow:
    """A learned or set-aside block, as `newsflow boilerplate list` shows it."""

    site: str
    block_hash: str
    pages: int
    sample: str
    learned_at: datetime
    kept: str | None  # None: learned; else why it is set aside (KEPT_BY_*)


def list_blocks(con: duckdb.DuckDBPyConnection, site: str | None = None) -> list[BlockRow]:
    """Learned and set-aside blocks (of one site), by site and most pages first."""
    rows = con.execute(
        "SELECT site, block_hash, pages, sample, learned_at, NULL FROM boilerplate_blocks "
        "WHERE $1 IS NULL OR site = $1 UNION ALL "
        "SELECT site, block_hash, pages, sample, learned_at, reason FROM boilerplate_kept "
        "WHERE $1 IS NULL OR site = $1 ORDER BY 1, 3 DESC, 2", [site]).fetchall()
    return [BlockRow(site=r[0], block_hash=r[1], pages=int(r[2]), sample=r[3], learned_at=r[4],
                     kept=r[5]) for r in rows]


def learned_samples(con: duckdb.DuckDBPyConnection, sites: Iterable[str]
                    ) -> list[tuple[str, str, str]]:
    """(site, block_hash, sample) of the blocks learned for these sites."""
    names = sorted(set(sites))
    if not names:
        return []
    return [(r[0], r[1], r[2]) for r in con.execute(
        "SELECT site, block_hash, sample FROM boilerplate_blocks WHERE site IN (SELECT unnest(?))",
        [names]).fetchall()]


def kept_blocks(con: duckdb.DuckDBPyConnection, reason: str) -> list[tuple[str, str, str]]:
    """(site, block_hash, sample) of the blocks set aside for this reason."""
    return [(r[0], r[1], r[2]) for r in con.execute(
        "SELECT site, block_hash, sample FROM boilerplate_kept WHERE reason = ?",
        [reason]).fetchall()]


def block_state(con: duckdb.DuckDBPyConnection, site: str, block_hash: str) -> str | None:
    """'learned', the reason a block is set aside, or None when the site has no such block."""
    row = con.execute(
        "SELECT 'learned' FROM boilerplate_blocks WHERE site = $1 AND block_hash = $2 UNION ALL "
        "SELECT reason FROM boilerplate_kept WHERE site = $1 AND block_hash = $2",
        [site, block_hash]).fetchone()
    return str(row[0]) if row else None


def set_aside(con: duckdb.DuckDBPyConnection, blocks: Sequence[tuple[str, str]], reason: str
              ) -> int:
    """Move learned (site, block) pairs to boilerplate_kept (never learned again while there)
    and flag the pages holding them for re-cleaning; returns how many pages."""
    if not blocks:
        return 0
    sites, hashes = (list(c) for c in zip(*blocks, strict=True))
    temp_table(con, "_aside", {"site": sites, "block_hash": hashes})
    lake.insert(con, "boilerplate_kept", "SELECT site, block_hash, pages, sample, learned_at, "
                "?, ? FROM boilerplate_blocks SEMI JOIN _aside USING (site, block_hash)",
                [reason, now()],
                "ON CONFLICT DO UPDATE SET reason = excluded.reason, kept_at = excluded.kept_at")
    con.execute("DELETE FROM boilerplate_blocks WHERE (site, block_hash) IN "
                "(SELECT (site, block_hash) FROM _aside)")
    drop_temp(con, "_aside")
    return mark_dirty(con, blocks, batch=False)


def relabel_kept(con: duckdb.DuckDBPyConnection, site: str, block_hash: str, reason: str) -> None:
    """Change why a set-aside block is kept."""
    con.execute("UPDATE boilerplate_kept SET reason = ?, kept_at = ? WHERE site = ? "
                "AND block_hash = ?", [reason, now(), site, block_hash])


def unkeep(con: duckdb.DuckDBPyConnection, blocks: Sequence[tuple[str, str]]) -> None:
    """Drop these (site, block) pairs from boilerplate_kept: they may be learned again."""
    if blocks:
        sites, hashes = (list(c) for c in zip(*blocks, strict=True))
        temp_table(con, "_unkeep", {"site": sites, "block_hash": hashes})
        con.execute("DELETE FROM boilerplate_kept WHERE (site, block_hash) IN "
                    "(SELECT (site, block_hash) FROM _unkeep)")
        drop_temp(con, "_unkeep")


def update_texts(con: duckdb.DuckDBPyConnection, texts: Sequence[tuple[str, str]]) -> None:
    """Write cleaned (article_id, text) pairs, and their word counts, to article_records."""
    if texts:
        ids, bodies = (list(c) for c in zip(*texts, strict=True))
        counts = [len(t.split()) for t in bodies]
        con.execute(
            "UPDATE article_records SET text = n.text, word_count = n.wc FROM ("
            "SELECT unnest($1) AS id, unnest($2) AS text, unnest($3) AS wc) n "
            "WHERE article_records.article_id = n.id", [ids, bodies, counts])
