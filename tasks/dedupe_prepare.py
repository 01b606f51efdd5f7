"""Dedupe's prepare step: take pending articles, learn their sites' boilerplate, clean texts."""

from __future__ import annotations

import contextlib
import gc
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

import duckdb
import numpy as np

from newsflow.dedupe.types import PreparedBatch, WorkItem
from storage import boilerplate as store_bp
from storage import dedupe as store
from storage.batch import batch_view
from storage.db import reader
from storage.memory import READER_MEMORY, raise_memory, retry_out_of_memory
from tasks import boilerplate as bp
from tasks.store import guarded_writer

# A batch is held in memory (raw and cleaned texts, lines, words, shingles), in proportion to its
# words, so a batch also stops (besides tasks.dedupe.MAX_BATCHES) at this many words, whatever
# the backlog. Words, not articles: stores of short articles keep their few big batches while
# long real pages make smaller ones (docs/performance.md, "Dedupe batch size").
MAX_BATCH_WORDS = 3_500_000
# Stored candidates whose texts _match holds at once (each chunk is one scan of the texts).
LOAD_TEXTS = 1000
# Stored pages whose texts _learn holds at once: a story with thirty stored copies puts them
# all in its sample, and holding every sampled page of a batch grew dedupe's peak with the store.
LOAD_PAGES = 500


def _learn(con: duckdb.DuckDBPyConnection, lines: dict[str, list[tuple[str, str]]],
           keep: dict[str, Callable[[str], bool]] | None = None
           ) -> list[tuple[str, str, int, str]]:
    """(site, block, pages, sample line) of the batch's blocks that have just become boilerplate.

    lines: (hash, line) pairs of the batch's pages, by article id. Blocks shared by a few copies
    of one story stay candidates, and are judged again, as pages arrive. Candidates on the same
    sample of pages get the same verdict (see boilerplate.distinct_pages), so a story's twenty
    paragraphs on its six copies are judged once, not twenty times. Stored pages are read
    LOAD_PAGES at a time, for a chunk of samples, and let go after. Blocks forgotten or kept
    (boilerplate_kept) are no candidates; keep: the sources' allow-lists (sources.toml
    `keep_blocks`), whose blocks are never learned.
    """
    cands = store_bp.block_candidates(con, bp.MIN_PAGES, bp.SAMPLE_PAGES)
    if not cands:
        return []
    known = store_bp.boilerplate_of(con, {c.site for c in cands})
    samples: dict[str, str] = {}
    for page in lines.values():
        for h, line in page:
            samples.setdefault(h, line.strip())
    if keep:
        cands = [c for c in cands
                 if c.site not in keep or not keep[c.site](samples.get(c.block_hash, ""))]
    groups: dict[tuple[str, tuple[str, ...]], list[store_bp.BlockCandidate]] = defaultdict(list)
    for c in cands:
        groups[(c.site, c.sample)].append(c)
    order = sorted(groups)
    out = []
    start = 0
    while start < len(order):
        end, need = start, set[str]()
        while end < len(order) and (len(need) < LOAD_PAGES or end == start):
            need |= set(order[end][1]) - lines.keys()
            end += 1
        stored = {a: bp.hashed_lines(raw) for a, raw in store_bp.raw_texts(con, need).items()}
        for site, sample in order[start:end]:
            pages = [bp.PageLines(article_id=a, lines=tuple(
                (h, line) for h, line in (lines.get(a) or stored.get(a) or [])
                if h not in known[site])) for a in sample]
            if bp.is_boilerplate(pages):
                out += [(c.site, c.block_hash, c.pages, samples.get(c.block_hash, ""))
                        for c in groups[(site, sample)]]
        start = end
    return sorted(out)


def _block_rows(lines: Sequence[list[tuple[str, str]]]) -> tuple[np.ndarray, np.ndarray]:
    """(page position, uint64 block hash) of the distinct blocks of each page of a batch."""
    idx: list[int] = []
    hashes: list[int] = []
    for n, page in enumerate(lines):
        distinct = sorted({h for h, _ in page})
        idx += [n] * len(distinct)
        hashes += [int(h, 16) for h in distinct]
    return np.array(idx, dtype=np.int32), np.array(hashes, dtype=np.uint64)


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Cyclic GC paused for one step: a batch allocates millions of small acyclic objects
    (lines, words, tuples), and the collections they trigger rescan the whole live batch
    again and again. Refcounting still frees them; GC resumes after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# DuckDB's buffer pool for the dedupe's writes: loading a batch's texts scans every stored
# text and needs more than a writer's default (docs/performance.md).
DB_MEMORY = READER_MEMORY


def prepare(con: duckdb.DuckDBPyConnection, limit: int,
            patterns: dict[str, list[str]], keep: dict[str, list[str]] | None = None
            ) -> PreparedBatch:
    """Take a batch of pending articles, learn their sites' boilerplate and clean their texts.

    keep: each source's allow-list (sources.toml `keep_blocks`): blocks never learned.
    """
    raise_memory(con, DB_MEMORY)
    with no_gc():
        return _prepare(con, limit, patterns, keep or {})


def _prepare(con: duckdb.DuckDBPyConnection, limit: int,
             patterns: dict[str, list[str]], keep: dict[str, list[str]]) -> PreparedBatch:
    arts = store.pending(con, limit, MAX_BATCH_WORDS)
    out = PreparedBatch()
    if not arts:
        return out
    seen: dict[str, str] = {}
    lines = [bp.hashed_lines(a.raw_text, seen) for a in arts]
    sites = sorted({a.source for a in arts})
    with batch_view(con, [a.article_id for a in arts], [a.source for a in arts]):
        store_bp.replace_blocks(con, *_block_rows(lines))
        learned = _learn(con, {a.article_id: page for a, page in zip(arts, lines, strict=True)},
                         {s: bp.keep_matcher(e) for s, e in keep.items() if e})
        store_bp.learn_blocks(con, learned)
        # Pages processed before these blocks were known still carry them: clean them again.
        out.flagged = store_bp.mark_dirty(con, [(site, h) for site, h, _, _ in learned])
    out.learned = len(learned)
    known = store_bp.boilerplate_of(con, sites)
    compiled = {s: bp.compile_patterns(p) for s, p in patterns.items()}
    changed = []
    for a, page in zip(arts, lines, strict=True):
        rules = (known[a.source], compiled.get(a.source, []))
        # articles.text loses learned blocks only where they are chrome; the signature
        # ignores them all, so copies carrying a site's chrome in odd places still match.
        text = bp.stored_text(page, *rules)
        if text != a.text:
            changed.append((a.article_id, text))
        out.items.append(WorkItem(article_id=a.article_id, url=a.url, source=a.source,
                                  text=bp.signing_text(page, *rules),
                                  canonical_url=a.canonical_url, extracted_at=a.extracted_at,
                                  known=a.known))
    store_bp.update_texts(con, changed)
    out.recleaned = len(changed)
    return out


def signing_texts(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]
                  ) -> dict[str, tuple[str, str]]:
    """(source, text) of stored articles as dedupe signs them: articles.text keeps learned
    blocks inside stories (bp.stored_text), which the batch's own signatures leave out."""
    texts = store.texts_of(con, article_ids)
    known = store_bp.boilerplate_of(con, {src for src, _ in texts.values()})
    return {aid: (src, bp.signing_text(text, known[src]) if known[src] else text)
            for aid, (src, text) in texts.items()}


def sync_keep_blocks(con: duckdb.DuckDBPyConnection, keep: dict[str, list[str]]) -> int:
    """Apply the sources' allow-lists (sources.toml `keep_blocks`) to what was learned: learned
    blocks they match are set aside (boilerplate_kept) and their pages flagged for re-cleaning;
    blocks set aside by an entry since removed may be learned again. Idempotent; returns how
    many pages were flagged."""
    newly, stale = _keep_changes(con, keep)
    store_bp.unkeep(con, stale)
    return store_bp.set_aside(con, newly, store_bp.KEPT_BY_LIST)


def _keep_changes(con: duckdb.DuckDBPyConnection, keep: dict[str, list[str]]
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(learned blocks the allow-lists now match, kept blocks they no longer match)."""
    matchers = {s: bp.keep_matcher(e) for s, e in keep.items() if e}
    learned = store_bp.learned_samples(con, matchers)
    newly = [(site, h) for site, h, sample in learned if matchers[site](sample)]
    stale = [(site, h) for site, h, sample in store_bp.kept_blocks(con, store_bp.KEPT_BY_LIST)
             if site not in matchers or not matchers[site](sample)]
    return newly, stale


@retry_out_of_memory("dedupe: apply the keep_blocks allow-lists")
def apply_keep_blocks(db: str, keep: dict[str, list[str]]) -> int:
    """sync_keep_blocks in a writer transaction, only when the allow-lists changed anything
    (a read first: an unchanged registry costs no writer on every dedupe run)."""
    with reader(db) as con:
        try:
            changes = _keep_changes(con, keep)
        except duckdb.CatalogException:  # a database not migrated yet: the writer migrates it
            changes = ([("", "")], [])
    if not any(changes):
        return 0
    with guarded_writer(db) as con:
        return sync_keep_blocks(con, keep)


def forget_block(con: duckdb.DuckDBPyConnection, site: str, block: str) -> int:
    """Forget a learned block of a site for good (`newsflow boilerplate forget`): it is set
    aside so it is never learned again, and the pages holding it are flagged for re-cleaning.
    Returns how many (0 when forgotten before); raises KeyError when the site has no such
    block."""
    state = store_bp.block_state(con, site, block)
    if state is None:
        raise KeyError((site, block))
    if state == "learned":
        return store_bp.set_aside(con, [(site, block)], store_bp.KEPT_BY_FORGET)
    if state != store_bp.KEPT_BY_FORGET:  # set aside by the allow-list: now for good
        store_bp.relabel_kept(con, site, block, store_bp.KEPT_BY_FORGET)
    return 0
