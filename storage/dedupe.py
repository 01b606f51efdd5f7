"""Dedupe reads and writes: pending articles, site blocks, LSH band keys, edges and stories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np

from storage.reads import PENDING_FROM

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def _now() -> datetime:
    return datetime.now(UTC)


def _insert_rows(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, np.ndarray],
                 sql: str, params: list[Any] | None = None) -> None:
    """Run sql with numeric numpy columns registered as view `name`."""
    con.register(name, columns)
    try:
        con.execute(sql, params)
    finally:
        con.unregister(name)


# Strings travel to DuckDB packed into ONE parameter, split in SQL: DuckDB's Python client
# converts a bound list value by value (~15 us each: it retries `import pandas` for every one),
# and register() of an object array costs ~10 us a value, while one long string is one value.
# Numbers travel as registered numpy arrays, which DuckDB scans in bulk.
_SEP = "\x1f"  # ASCII unit separator: never in ids, URL keys or hashes


def _packable(values: Sequence[str | None]) -> bool:
    return not any(v is not None and _SEP in v for v in values)


def _in(values: Sequence[str]) -> tuple[str, Any]:
    """(SQL subquery, parameter) for `x IN <subquery>` over values."""
    if _packable(values):
        return "(SELECT unnest(string_split(?, chr(31))))", _SEP.join(values)
    return "(SELECT unnest(?))", list(values)  # a value holds the separator: the slow way


def _table(con: duckdb.DuckDBPyConnection, name: str, strings: dict[str, Sequence[str | None]],
           numbers: dict[str, np.ndarray] | None = None) -> None:
    """CREATE OR REPLACE TEMP TABLE name (idx, *strings, *numbers): row idx holds value idx of
    every column (None -> NULL; '' is read as NULL too). Temp tables work on read-only
    connections as well."""
    n = len(next(iter(strings.values())))
    inner, outer = ["unnest(range(?::BIGINT))::INTEGER AS idx"], ["idx"]
    params: list[Any] = [n]
    for col, vals in strings.items():
        if _packable(vals):
            inner.append(f"unnest(string_split(?, chr(31))) AS {col}")
            params.append(_SEP.join("" if v is None else v for v in vals))
        else:
            inner.append(f"unnest(?) AS {col}")
            params.append(list(vals))
        outer.append(f"NULLIF({col}, '') AS {col}")
    # With no rows, string_split('') still yields one '': the idx IS NULL filter drops it.
    select = (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)}) "
              "WHERE idx IS NOT NULL")
    if not numbers:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}", params)
        return
    con.register(f"{name}_n", {"idx": np.arange(n, dtype=np.int32), **numbers})
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT s.*, n.* EXCLUDE (idx) "
                    f"FROM ({select}) s JOIN {name}_n n USING (idx)", params)
    finally:
        con.unregister(f"{name}_n")


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute(f"DROP TABLE IF EXISTS {name}")


# A block hash is 16 hex digits (tasks.boilerplate.block_hash); it travels as its uint64 value.
_HEX = "lpad(lower(to_hex({})), 16, '0')"


@contextmanager
def batch_view(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str],
               sites: Sequence[str]) -> Iterator[None]:
    """Temp table _batch(idx, article_id, site) of the batch, for the statements below: per-row
    data then travels as numpy integer columns (a page's position in the batch) joined to it."""
    _table(con, "_batch", {"article_id": article_ids, "site": sites})
    try:
        yield
    finally:
        _drop(con, "_batch")


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
    sub, param = _in(ids)
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
    # batch's texts at once in its buffer pool to sort them (out of memory under 64 MB).
    at = {aid: n for n, aid in enumerate(ids)}
    rows.sort(key=lambda r: at[r[0]])
    return [PendingArticle(article_id=r[0], url=r[1], source=r[2], raw_text=r[3],
                           text=r[3] if r[5] else r[4], canonical_url=r[6], extracted_at=r[7],
                           known=bool(r[8])) for r in rows]


def count_pending(con: duckdb.DuckDBPyConnection) -> int:
    """How many articles dedupe has to (re)process."""
    row = con.execute(f"SELECT count(*) {PENDING_FROM}").fetchone()
    return int(row[0]) if row else 0


# --- boilerplate -----------------------------------------------------------------------------


def replace_blocks(con: duckdb.DuckDBPyConnection, idx: np.ndarray, hashes: np.ndarray) -> None:
    """Store the blocks of the batch's pages (needs batch_view), replacing any older rows.

    idx: int32 position of the page in the batch; hashes: uint64 value of each block hash.
    """
    # Every page of the batch, not only re-processed ones: a run that stopped between its
    # prepare and write steps left block rows of pages that look new to the next run.
    con.execute("DELETE FROM dedupe_blocks WHERE article_id IN (SELECT article_id FROM _batch)")
    if len(idx):
        _insert_rows(con, "_new_blocks", {"idx": idx, "h": hashes},
                     "INSERT INTO dedupe_blocks SELECT b.site, "
                     f"{_HEX.format('n.h')}, b.article_id FROM _new_blocks n JOIN _batch b USING (idx)")


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
    sub, param = _in(ids)
    rows = con.execute(f"SELECT article_id, raw_text FROM article_records WHERE article_id IN {sub}",
                       [param]).fetchall()
    return {r[0]: r[1] for r in rows}


def learn_blocks(con: duckdb.DuckDBPyConnection,
                 learned: Sequence[tuple[str, str, int, str]]) -> None:
    """Record (site, block_hash, pages, sample) rows as boilerplate."""
    if not learned:
        return
    sites, hashes, pages, samples = (list(c) for c in zip(*learned, strict=True))
    _table(con, "_learned", {"site": sites, "block_hash": hashes,
                             "sample": [x[:300] for x in samples]},
           {"pages": np.array(pages, dtype=np.int32)})
    con.execute("INSERT INTO boilerplate_blocks SELECT site, block_hash, pages, "
                "COALESCE(sample, ''), ? FROM _learned ON CONFLICT DO NOTHING", [_now()])
    _drop(con, "_learned")


def mark_dirty(con: duckdb.DuckDBPyConnection, blocks: Sequence[tuple[str, str]], *,
               batch: bool = True) -> int:
    """Flag the processed pages holding any of these (site, block) pairs for re-cleaning, in
    one statement; returns how many. batch: only pages outside the batch (needs batch_view)."""
    if not blocks:
        return 0
    sites, hashes = (list(c) for c in zip(*blocks, strict=True))
    _table(con, "_dirty", {"site": sites, "block_hash": hashes})
    outside = "AND article_id NOT IN (SELECT article_id FROM _batch) " if batch else ""
    rows = con.execute(
        "UPDATE dedupe_articles SET dirty = TRUE WHERE NOT dirty AND article_id IN ("
        "SELECT article_id FROM dedupe_blocks SEMI JOIN _dirty USING (site, block_hash)) "
        f"{outside}RETURNING article_id").fetchall()
    _drop(con, "_dirty")
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
    _table(con, "_aside", {"site": sites, "block_hash": hashes})
    con.execute("INSERT INTO boilerplate_kept SELECT site, block_hash, pages, sample, learned_at, "
                "?, ? FROM boilerplate_blocks SEMI JOIN _aside USING (site, block_hash) "
                "ON CONFLICT DO UPDATE SET reason = excluded.reason, kept_at = excluded.kept_at",
                [reason, _now()])
    con.execute("DELETE FROM boilerplate_blocks WHERE (site, block_hash) IN "
                "(SELECT (site, block_hash) FROM _aside)")
    _drop(con, "_aside")
    return mark_dirty(con, blocks, batch=False)


def relabel_kept(con: duckdb.DuckDBPyConnection, site: str, block_hash: str, reason: str) -> None:
    """Change why a set-aside block is kept."""
    con.execute("UPDATE boilerplate_kept SET reason = ?, kept_at = ? WHERE site = ? "
                "AND block_hash = ?", [reason, _now(), site, block_hash])


def unkeep(con: duckdb.DuckDBPyConnection, blocks: Sequence[tuple[str, str]]) -> None:
    """Drop these (site, block) pairs from boilerplate_kept: they may be learned again."""
    if blocks:
        sites, hashes = (list(c) for c in zip(*blocks, strict=True))
        _table(con, "_unkeep", {"site": sites, "block_hash": hashes})
        con.execute("DELETE FROM boilerplate_kept WHERE (site, block_hash) IN "
                    "(SELECT (site, block_hash) FROM _unkeep)")
        _drop(con, "_unkeep")


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
    _table(con, "_keys", {"k": [*url_keys, *canonical_keys]})
    _table(con, "_hashes", {"h": text_hashes})
    rows = con.execute(
        "SELECT article_id, url_key, canonical_key, text_hash FROM dedupe_articles "
        "WHERE (url_key IN (SELECT k FROM _keys) OR canonical_key IN (SELECT k FROM _keys) "
        "OR text_hash IN (SELECT h FROM _hashes)) "
        "AND article_id NOT IN (SELECT article_id FROM _batch)").fetchall()
    _drop(con, "_keys")
    _drop(con, "_hashes")
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def texts_of(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(source, text) of stored articles."""
    ids = list(article_ids)
    if not ids:
        return {}
    sub, param = _in(ids)
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
    # Timestamps as epoch microseconds: a datetime object costs ~10 us to convert.
    micros = np.array([((t if t.tzinfo else t.replace(tzinfo=UTC)) - _EPOCH) // _MICRO
                       for t in cols[6]], dtype=np.int64)
    _table(con, "_sigs", {"article_id": cols[0], "site": cols[1], "url_key": cols[2],
                          "canonical_key": cols[3], "text_hash": cols[4]},
           {"shingles": np.array(cols[5], dtype=np.int32), "micros": micros})
    con.execute("INSERT INTO dedupe_articles SELECT article_id, site, url_key, canonical_key, "
                "text_hash, shingles, to_timestamp(0) + to_microseconds(micros), ?, FALSE "
                "FROM _sigs", [_now()])
    _drop(con, "_sigs")
    band, bucket, idx = bands
    if len(idx):
        _insert_rows(con, "_new_bands", {"band": band, "bucket": bucket, "idx": idx},
                     "INSERT INTO lsh_bands SELECT n.band, n.bucket, b.article_id "
                     "FROM _new_bands n JOIN _batch b USING (idx)")


def replace_edges(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str],
                  edges: Sequence[tuple[str, str, str, float]]) -> None:
    """Drop every edge touching these articles and store their newly verified ones."""
    if article_ids:
        sub, param = _in(article_ids)
        con.execute(f"DELETE FROM dedupe_edges WHERE article_a IN {sub} OR article_b IN {sub}",
                    [param, param])
    if edges:
        a, b, method, sim = zip(*edges, strict=True)
        _table(con, "_edges", {"a": a, "b": b, "m": method},
               {"s": np.array(sim, dtype=np.float64)})
        con.execute("INSERT INTO dedupe_edges SELECT a, b, m, s FROM _edges")
        _drop(con, "_edges")


def story_members_of(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                     ) -> dict[str, str]:
    """article_id -> story_id of every member of the stories these articles belong to."""
    ids = list(article_ids)
    if not ids:
        return {}
    sub, param = _in(ids)
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
    sub, param = _in(ids)
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
    sub, param = _in(ids)
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
        sub, param = _in(article_ids)
        con.execute(f"DELETE FROM story_membership WHERE article_id IN {sub}", [param])
    if rows:
        aid, sid, role, sim, method = zip(*rows, strict=True)
        _table(con, "_members", {"a": aid, "s": sid, "r": role, "m": method},
               {"x": np.array(sim, dtype=np.float64)})
        con.execute("INSERT INTO story_membership SELECT a, s, r, x, m, ? FROM _members",
                    [_now()])
        _drop(con, "_members")


def memberships_of(con: duckdb.DuckDBPyConnection, article_ids: Iterable[str]
                   ) -> dict[str, tuple[str, str, float, str]]:
    """article_id -> (story_id, role, similarity, match_method) as stored."""
    ids = list(article_ids)
    if not ids:
        return {}
    sub, param = _in(ids)
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


# --- reworded-copy stage ---------------------------------------------------------------------


def reworded_meta(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]
                  ) -> dict[str, tuple[str | None, datetime | None, bool, datetime]]:
    """article_id -> (attribution_url, published_at, date_trusted, fetched_at)."""
    if not article_ids:
        return {}
    sub, param = _in(article_ids)
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
    _table(con, "_att", {"k": target_keys or [""]})
    _table(con, "_own", {"k": own_keys or [""]})
    try:
        return [(r[0], r[1], r[2]) for r in con.execute(
            "SELECT 'to', url_key, article_id FROM dedupe_articles "
            "WHERE url_key IN (SELECT k FROM _att WHERE k IS NOT NULL) "
            "AND article_id NOT IN (SELECT article_id FROM _batch) "
            "UNION ALL SELECT 'from', target_key, article_id FROM reworded_links "
            "WHERE target_key IN (SELECT k FROM _own WHERE k IS NOT NULL) "
            "AND article_id NOT IN (SELECT article_id FROM _batch)").fetchall()]
    finally:
        _drop(con, "_att")
        _drop(con, "_own")


@dataclass(kw_only=True)
class RewordedRows:
    """The reworded index rows of a batch: postings, attribution links and new df counts."""

    terms: np.ndarray  # int64 term of each posting
    idx: np.ndarray  # int32 batch position of each posting
    fday: np.ndarray  # int32 fetch day (days since 1970) of each posting
    pday: np.ndarray  # int32 trusted publication day, -1 when none
    links: list[tuple[str, str]]  # (article_id, target url_key)
    df_terms: np.ndarray  # int64 terms whose df grows
    df_add: np.ndarray  # int32 by how much


def replace_reworded(con: duckdb.DuckDBPyConnection, rows: RewordedRows) -> None:
    """Store the batch's postings and attribution links, replacing older ones, and add its
    new articles' terms to the document frequencies (needs batch_view)."""
    con.execute("DELETE FROM reworded_terms WHERE article_id IN (SELECT article_id FROM _batch)")
    con.execute("DELETE FROM reworded_links WHERE article_id IN (SELECT article_id FROM _batch)")
    if len(rows.idx):
        _insert_rows(con, "_new_terms", {"term": rows.terms, "idx": rows.idx, "fday": rows.fday,
                                         "pday": rows.pday},
                     "INSERT INTO reworded_terms SELECT n.term, b.article_id, n.fday, "
                     "NULLIF(n.pday, -1) FROM _new_terms n JOIN _batch b USING (idx)")
    if rows.links:
        ids, keys = (list(c) for c in zip(*rows.links, strict=True))
        _table(con, "_links", {"a": ids, "k": keys})
        con.execute("INSERT INTO reworded_links SELECT a, k FROM _links")
        _drop(con, "_links")
    if len(rows.df_terms):
        _insert_rows(con, "_df", {"term": rows.df_terms, "n": rows.df_add},
                     "INSERT INTO reworded_df SELECT term, n FROM _df "
                     "ON CONFLICT (term) DO UPDATE SET df = reworded_df.df + excluded.df")
