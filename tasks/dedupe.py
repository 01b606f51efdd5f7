"""Dedupe as Prefect tasks (prepare, match, write a batch) and run_all, the flow's loop as plain calls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE

from newsflow.dedupe.election import Edge, Member, components, memberships
from newsflow.dedupe.types import DedupeStats, MatchedBatch, PreparedBatch
from storage import dedupe as store
from storage import reworded as store_rw
from storage.batch import batch_view
from storage.db import reader
from storage.memory import raise_memory, retry_out_of_memory
from tasks.dedupe_match import match
from tasks.dedupe_prepare import DB_MEMORY, apply_keep_blocks, no_gc, prepare
from tasks.retry import retry_if_transient
from tasks.store import guarded_writer


def _members(con: duckdb.DuckDBPyConnection, ids: Iterable[str]) -> dict[str, Member]:
    out = {}
    for r in store.member_rows(con, ids):
        out[r[0]] = Member(article_id=r[0], url=r[1], kind=r[2], fetched_at=r[3],
                           canonical_url=r[4], links=tuple(r[5] or ()), published_at=r[6],
                           date_trusted=bool(r[7]), attribution_url=r[8],
                           credited_publisher=r[9], publisher=r[10], sitename=r[11])
    return out


def write(con: duckdb.DuckDBPyConnection, batch: PreparedBatch, matched: MatchedBatch
          ) -> DedupeStats:
    """Store signatures and edges of the batch, then re-form every story it touches."""
    raise_memory(con, DB_MEMORY)
    with no_gc():
        return _write(con, batch, matched)


def _write(con: duckdb.DuckDBPyConnection, batch: PreparedBatch, matched: MatchedBatch
           ) -> DedupeStats:
    ids = [i.article_id for i in batch.items]
    seen = [i.article_id for i in batch.items if i.known]  # only these have edges to replace
    with batch_view(con, ids, [i.source for i in batch.items]):
        store.replace_signatures(con, matched.signatures, matched.bands)
        if matched.reworded is not None:
            store_rw.replace_reworded(con, matched.reworded)
    store.replace_edges(con, seen, [(e.a, e.b, e.method, e.similarity) for e in matched.edges])
    affected = set(ids) | {n for e in matched.edges for n in (e.a, e.b)}
    while True:  # close over old stories and edges (normally one round)
        grown = affected | set(store.story_members_of(con, affected))
        edges = [Edge(a=a, b=b, method=m, similarity=s)
                 for a, b, m, s in store.edges_touching(con, grown)]
        grown |= {n for e in edges for n in (e.a, e.b)}
        if grown == affected:
            break
        affected = grown
    before = store.memberships_of(con, affected)
    members = _members(con, affected)
    rows = []
    usable = [e for e in edges if e.a in members and e.b in members]
    comps = components(members, usable)
    comp_of = {a: n for n, comp in enumerate(comps) for a in comp}
    comp_edges: dict[int, list[Edge]] = defaultdict(list)
    for e in usable:
        comp_edges[comp_of[e.a]].append(e)
    for n, comp in enumerate(comps):
        rows += [(m.article_id, m.story_id, m.role, m.similarity, m.match_method)
                 for m in memberships([members[a] for a in comp], comp_edges[n])]
    store.replace_memberships(con, sorted(affected), rows)
    old_ids = {v[0] for v in before.values()}
    stats = DedupeStats(articles_processed=len(ids), recleaned=batch.recleaned,
                        boilerplate_learned=batch.learned, candidates=matched.candidates,
                        edges=len(matched.edges))
    stats.new_stories = len({r[1] for r in rows} - old_ids)
    batch_ids = set(ids)
    stats.copies_merged = sum(1 for r in rows if r[0] in batch_ids and r[2] == "copy"
                              and before.get(r[0], ("", "original"))[1] != "copy")
    for e in matched.edges:
        stats.by_method[e.method] = stats.by_method.get(e.method, 0) + 1
    return stats


@task(name="dedupe-prepare", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=retry_if_transient)
@retry_out_of_memory("dedupe: load and clean a batch")
def prepare_batch(db: str, limit: int, patterns: dict[str, list[str]],
                  keep: dict[str, list[str]] | None = None) -> PreparedBatch:
    """Prefect task: load pending articles, learn boilerplate, clean texts (one transaction)."""
    with guarded_writer(db) as con:
        return prepare(con, limit, patterns, keep)


@task(name="dedupe-match", cache_policy=NO_CACHE)
@retry_out_of_memory("dedupe: match a batch")
def match_batch(db: str, batch: PreparedBatch) -> MatchedBatch:
    """Prefect task: signatures, candidates and verification of a batch (read-only)."""
    with reader(db) as con:
        return match(con, batch)


@task(name="dedupe-write", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=retry_if_transient)
@retry_out_of_memory("dedupe: write a batch")
def write_batch(db: str, batch: PreparedBatch, matched: MatchedBatch) -> DedupeStats:
    """Prefect task: store signatures and edges, re-form the touched stories (one transaction)."""
    with guarded_writer(db) as con:
        return write(con, batch, matched)


def add_stats(total: DedupeStats, s: DedupeStats) -> None:
    """Accumulate one batch's counts into total."""
    for name in ("articles_processed", "recleaned", "boilerplate_learned", "candidates", "edges",
                 "new_stories", "copies_merged"):
        setattr(total, name, getattr(total, name) + getattr(s, name))
    for k, v in s.by_method.items():
        total.by_method[k] = total.by_method.get(k, 0) + v


# Each batch rewrites the cleaned texts of its articles, and DuckDB's checkpoint after an
# UPDATE of article_records.text costs in proportion to the table (docs/performance.md). A big
# backlog is therefore cut into at most this many batches, not into
# batches of a fixed size, so that cost stays linear in the backlog.
MAX_BATCHES = 8


def batch_size_for(db: str, batch_size: int) -> int:
    """The batch size for this run: batch_size, or bigger when the backlog is large."""
    with reader(db) as con:
        backlog = store.count_pending(con)
    return max(batch_size, -(-backlog // MAX_BATCHES))


def run_all(db: str, *, batch_size: int = 2000, patterns: dict[str, list[str]] | None = None,
            keep: dict[str, list[str]] | None = None) -> DedupeStats:
    """Dedupe everything pending without Prefect (benchmarks, tests): the flow's loop, plainly."""
    total = DedupeStats()
    apply_keep_blocks(db, keep or {})
    size = batch_size_for(db, batch_size)
    while True:
        prepared = prepare_batch.fn(db, size, patterns or {}, keep)
        if not prepared.items:
            return total
        add_stats(total, write_batch.fn(db, prepared, match_batch.fn(db, prepared)))
