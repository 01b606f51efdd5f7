"""Dedupe: shingles, MinHash band keys, verification, stories and the election of their original."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import re
import threading
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from newsflow.urls import normalize_url, url_key
from storage import dedupe as store
from storage.db import READER_MEMORY, raise_memory, reader, retry_out_of_memory
from tasks import boilerplate as bp
from tasks import reworded as rw
from tasks.store import guarded_writer

# --- signatures ------------------------------------------------------------------------------

SHINGLE = 3  # words per shingle
NUM_PERM = 126
# 42 bands of 3 rows: a pair with Jaccard 0.4 becomes a candidate with p = 0.94, one of 0.5
# with p = 0.996, while unrelated news (Jaccard < 0.05) almost never does. Verification, not
# LSH, decides; LSH only has to miss nothing a partial copy could be.
ROWS = 3
BANDS = NUM_PERM // ROWS
_WORD = re.compile(r"\w+")
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))


def words(text: str) -> list[str]:
    """Lower-case word tokens: punctuation, spacing and case never tell copies apart."""
    return _WORD.findall(text.lower())


class _WordHashes(dict[str, int]):
    """crc32 of each distinct word, shared by every text a process signs: news reuses its
    words, and a dict lookup costs a fifth of encoding and hashing the word again. A word seen
    for the first time is hashed on the lookup itself (__missing__): one pass over a text."""

    def __missing__(self, word: str) -> int:
        value = self[word] = zlib.crc32(word.encode())
        return value


_WORD_HASHES = _WordHashes()
_WORD_CACHE_MAX = 500_000  # entries; the cache starts over past this


def word_hashes(w: list[str]) -> np.ndarray:
    """crc32 of each word, as uint64."""
    if len(_WORD_HASHES) > _WORD_CACHE_MAX:
        _WORD_HASHES.clear()
    return np.fromiter(map(_WORD_HASHES.__getitem__, w), dtype=np.uint64, count=len(w))


def shingles_of(w: list[str]) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the word 3-grams of a word list (fewer: one shingle)."""
    if not w:
        return np.empty(0, dtype=np.uint64)
    h = word_hashes(w)
    if len(h) < SHINGLE:
        return np.array([int(h.sum())], dtype=np.uint64)
    # Position-dependent mix of three word hashes; uint64 arithmetic wraps, which is wanted.
    sh = np.sort(h[: -2] * _MIX[0] ^ h[1:-1] * _MIX[1] ^ h[2:])
    # Sorted distinct values: what np.unique returns, without its slower hash-based path.
    keep = np.empty(len(sh), dtype=bool)
    keep[0] = True
    np.not_equal(sh[1:], sh[:-1], out=keep[1:])
    return sh[keep]


def shingle_hashes(text: str) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the word 3-grams of text (fewer words: one shingle)."""
    return shingles_of(words(text))


def _identity(x: int) -> int:
    return x


# MurmurHash3's 32-bit finalizer, as datasketch's affine32 scheme pre-mixes each input hash.
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35),
           np.uint32(16))


def _affine32_permutations(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of datasketch's affine32 MinHash for seed: its own draws, in its order.

    Drawn here instead of taken from a datasketch MinHash: `import datasketch` loads scipy,
    redis and more (~50 MB in the flow process, the dedupe's peak), for two arrays.
    A test checks signature() against datasketch itself.
    """
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


_PERM_A, _PERM_B = _affine32_permutations()
_EMPTY = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)  # datasketch's initial hash values


# Shingles hashed per step of signature(): the (shingles x permutations) product is the only big
# array of the dedupe's text work. Made in one piece it was 450 KB an article, past the CLI's
# 128 KB mmap threshold (newsflow.cli._tune_malloc), so each article mapped, faulted in and
# unmapped it: 0.83 s of the 2,000-page bench dedupe, 0.13 s in this reused buffer (126 KB).
_SIGN_ROWS = 256
_SIGN_BUFFER = threading.local()


def signature(shingles: np.ndarray) -> np.ndarray:
    """The datasketch MinHash (affine32 scheme, seed 1) of a shingle set, computed in numpy.

    Equal to MinHash(num_perm=NUM_PERM, seed=1, scheme="affine32").update_batch() of the
    folded shingles (a test checks it), without its per-value Python call: 0.8 of its 1.6 s
    on 2,000 articles.
    """
    out = _EMPTY.copy()
    if not len(shingles):
        return out
    hv = ((shingles ^ (shingles >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    s1, m1, s2, m2, s3 = _FMIX32
    hv ^= hv >> s1
    hv *= m1
    hv ^= hv >> s2
    hv *= m2
    hv ^= hv >> s3
    buf = getattr(_SIGN_BUFFER, "rows", None)
    if buf is None:
        buf = _SIGN_BUFFER.rows = np.empty((_SIGN_ROWS, NUM_PERM), dtype=np.uint32)
    for start in range(0, len(hv), _SIGN_ROWS):
        part = hv[start:start + _SIGN_ROWS].reshape(-1, 1)
        rows = buf[:len(part)]
        np.multiply(part, _PERM_A, out=rows)  # uint32 arithmetic wraps, as datasketch's
        rows += _PERM_B
        np.minimum(out, rows.min(axis=0), out=out)
    return out


def datasketch_signature(shingles: np.ndarray) -> np.ndarray:
    """The same signature through datasketch itself (what signature() must equal)."""
    from datasketch import MinHash  # tests only: see _affine32_permutations

    m = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=_identity, scheme="affine32")
    if len(shingles):
        folded = (shingles ^ (shingles >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
        m.update_batch(folded.tolist())
    return np.asarray(m.hashvalues)


_PERSON = [band.to_bytes(2, "big") for band in range(BANDS)]


def band_keys(sig: np.ndarray) -> list[int]:
    """One signed 64-bit bucket key per band (what lsh_bands stores and joins on)."""
    raw = np.ascontiguousarray(sig.astype(np.uint32)).tobytes()
    width = ROWS * 4
    return [int.from_bytes(hashlib.blake2b(raw[band * width:(band + 1) * width], digest_size=8,
                                           person=_PERSON[band]).digest(), "big", signed=True)
            for band in range(BANDS)]


def words_hash(w: list[str]) -> str:
    """Exact-copy key: hash of the word sequence (spacing, case and punctuation ignored)."""
    return hashlib.sha256(" ".join(w).encode()).hexdigest()[:24]


# --- verification ----------------------------------------------------------------------------

# Tuned on the labelled evaluation set (bench/dedupe_eval, seed 1), checked on seeds 2 and 3.
MIN_SHARED = 25  # shingles two texts must share: below this nothing is evidence
MIN_SMALL = 0.6  # containment of the smaller text in the larger
MIN_LARGE = 0.25  # ... and of the larger in the smaller (a digest quotes ~1 paragraph of each)
NEAR_FULL = 0.85  # a near-full copy of a long article may be much shorter than it
NEAR_FULL_SHARED = 120  # ... when it shares this many shingles with it
# Shared shingles outside both leads: a shared lead paragraph alone is a quote, not a copy.
MIN_BEYOND_LEAD = 0.3
LEAD_MIN_WORDS = 15
# Canonical and URL evidence only needs the texts not to be unrelated (a canonical link to a
# home page must not merge every article of a site).
MIN_LINKED = 0.2
SAME_SITE_SMALL = 0.9  # two pages of one site must be near-identical both ways


@dataclass(kw_only=True)
class TextSig:
    """What verification needs of one article's cleaned text."""

    shingles: np.ndarray
    lead: np.ndarray  # shingles of the first substantive paragraph

    @property
    def size(self) -> int:
        return len(self.shingles)


def lead_paragraph(text: str) -> str:
    """The first paragraph long enough to be a story's lead (datelines and bylines skipped)."""
    for line in text.splitlines():
        if len(words(line)) >= LEAD_MIN_WORDS:
            return line
    return ""


def text_sig(text: str, w: list[str] | None = None) -> TextSig:
    """Shingles of text and of its lead (w: its words, when the caller has them already)."""
    return TextSig(shingles=shingles_of(words(text) if w is None else w),
                   lead=shingle_hashes(lead_paragraph(text)))


@dataclass(kw_only=True, frozen=True)
class Overlap:
    """Shingle overlap of two texts."""

    shared: int
    small: float  # containment of the smaller set in the larger
    large: float  # containment of the larger set in the smaller
    jaccard: float
    beyond_lead: float  # share of the shared shingles outside both texts' leads


def overlap(a: TextSig, b: TextSig) -> Overlap:
    """Exact shingle overlap of two texts (containment both ways, Jaccard, beyond the leads)."""
    common = np.intersect1d(a.shingles, b.shingles, assume_unique=True)
    shared = len(common)
    if not shared:
        return Overlap(shared=0, small=0.0, large=0.0, jaccard=0.0, beyond_lead=0.0)
    lo, hi = sorted((a.size, b.size))
    leads = np.union1d(a.lead, b.lead)
    outside = shared - len(np.intersect1d(common, leads, assume_unique=True))
    return Overlap(shared=shared, small=shared / lo, large=shared / hi,
                   jaccard=shared / (a.size + b.size - shared), beyond_lead=outside / shared)


def same_story(o: Overlap, *, same_site: bool = False) -> bool:
    """Whether an overlap proves a copy: partial copies yes, digests and shared chrome no."""
    if o.shared < MIN_SHARED or o.beyond_lead < MIN_BEYOND_LEAD:
        return False
    if same_site:  # the site's unlearned chrome could be most of two short pages
        return o.small >= SAME_SITE_SMALL and o.large >= SAME_SITE_SMALL
    if o.small >= MIN_SMALL and o.large >= MIN_LARGE:
        return True
    return o.small >= NEAR_FULL and o.shared >= NEAR_FULL_SHARED


def linked_story(o: Overlap) -> bool:
    """Whether texts tied by a URL or canonical link are plausibly the same article."""
    return o.small >= MIN_LINKED


# --- stories and election --------------------------------------------------------------------

# Election normalizes every body link of every member, and copies carry the same links: cached
# (a ValueError is not cached, so a bad link raises again, as before).
_normalize_url = functools.lru_cache(maxsize=1 << 16)(normalize_url)
_url_key = functools.lru_cache(maxsize=1 << 16)(url_key)

KIND_RANK = {"original": 0, "syndicator": 1, "aggregator": 2, "unknown": 2}
METHOD_RANK = {"url": 0, "canonical": 1, "exact_text": 2, "minhash": 3, "reworded": 4}


@dataclass(kw_only=True)
class Member:
    """What election needs of one article of a story."""

    article_id: str
    url: str
    kind: str
    fetched_at: datetime
    canonical_url: str | None = None
    links: tuple[str, ...] = ()
    published_at: datetime | None = None
    date_trusted: bool = False
    attribution_url: str | None = None  # the article a "Reference:"/"Source:" link credits
    credited_publisher: str | None = None  # named by a foreign copyright line
    publisher: str | None = None  # the source's publisher (None: site not in sources.toml)
    sitename: str | None = None  # the page's own site name (og:site_name)


@dataclass(kw_only=True, frozen=True)
class Edge:
    """Evidence that two articles tell one story."""

    a: str
    b: str
    method: str  # url | canonical | exact_text | minhash | reworded
    similarity: float

    def key(self) -> tuple[str, str]:
        return (self.a, self.b) if self.a < self.b else (self.b, self.a)


def better(e: Edge, f: Edge) -> bool:
    """True when e is stronger evidence than f."""
    return (METHOD_RANK[e.method], -e.similarity) < (METHOD_RANK[f.method], -f.similarity)


def _target(source: str, url: str, by_url: dict[str, str], by_key: dict[str, list[str]]
            ) -> str | None:
    """The member (other than source) a link points at: the exact URL first, then a variant."""
    try:
        exact = by_url.get(_normalize_url(url))
    except ValueError:
        return None
    if exact is not None:
        return exact if exact != source else None
    hits = [i for i in by_key.get(_url_key(url), []) if i != source]
    return hits[0] if len(hits) == 1 else None


def _pointed_at(members: Sequence[Member], targets_of: dict[str, set[str]]) -> list[Member]:
    """Members another member points at that do not point at a third one themselves."""
    hit = {t for m in members for t in targets_of[m.article_id]}
    roots = [m for m in members if m.article_id in hit and not targets_of[m.article_id]]
    return roots or [m for m in members if m.article_id in hit]


def _credited(pool: Sequence[Member], members: Sequence[Member]) -> list[Member]:
    """Members of the pool whose publisher (for an unlisted site: its own site name) is the
    one another member's foreign copyright line credits, among the best-ranked kinds that
    match: a credit never lifts an aggregator over an original, but lifts an unlisted site
    (ranked with aggregators) over the aggregator copies."""
    credited = {rw.publisher_key(m.credited_publisher) for m in members} - {""}
    hits = [m for m in pool if rw.publisher_key(m.publisher or m.sitename) in credited]
    if not hits:
        return []
    best = min(KIND_RANK.get(m.kind, 2) for m in hits)
    if best > min(KIND_RANK.get(m.kind, 2) for m in pool):
        return []
    return [m for m in hits if KIND_RANK.get(m.kind, 2) == best]


def elect(members: Sequence[Member]) -> str:
    """The story's original: canonical, attribution link, body links, credited publisher,
    source kind (an unlisted site ranks with aggregators), trusted date, fetch time."""
    by_url = {_normalize_url(m.url): m.article_id for m in members}
    by_key: dict[str, list[str]] = defaultdict(list)
    for m in members:
        by_key[_url_key(m.url)].append(m.article_id)

    def targets(m: Member, urls: Iterable[str]) -> set[str]:
        found = (_target(m.article_id, u, by_url, by_key) for u in urls)
        return {t for t in found if t is not None}

    pool = list(members)
    if len(pool) > 1:
        canon = {m.article_id: targets(m, [m.canonical_url] if m.canonical_url else [])
                 for m in members}
        pool = _pointed_at(pool, canon) or pool
    if len(pool) > 1:
        ids = {m.article_id for m in pool}
        attributed = {t for m in members if m.attribution_url
                      for t in targets(m, [m.attribution_url]) if t in ids}
        pool = [m for m in pool if m.article_id in attributed] or pool
    if len(pool) > 1:
        ids = {m.article_id for m in pool}
        cited = {t for m in members for t in targets(m, m.links) if t in ids}
        pool = [m for m in pool if m.article_id in cited] or pool
    if len(pool) > 1:
        pool = _credited(pool, members) or pool
    if len(pool) > 1:
        best = min(KIND_RANK.get(m.kind, 2) for m in pool)
        pool = [m for m in pool if KIND_RANK.get(m.kind, 2) == best]
    if len(pool) > 1:
        dated = [m for m in pool if m.date_trusted and m.published_at is not None]
        if dated:
            first = min(m.published_at for m in dated if m.published_at is not None)
            pool = [m for m in dated if m.published_at == first]
    return min(pool, key=lambda m: (m.fetched_at, m.article_id)).article_id


def components(nodes: Iterable[str], edges: Iterable[Edge]) -> list[list[str]]:
    """Connected components (each sorted) of the nodes under the edges."""
    parent: dict[str, str] = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in edges:
        for n in (e.a, e.b):
            parent.setdefault(n, n)
        ra, rb = find(e.a), find(e.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = defaultdict(list)
    for n in parent:
        groups[find(n)].append(n)
    return [sorted(g) for g in groups.values()]


@dataclass(kw_only=True, frozen=True)
class Membership:
    """One article's place in its story."""

    article_id: str
    story_id: str
    role: str  # original | copy
    similarity: float
    match_method: str  # self | url | canonical | exact_text | minhash | reworded


def story_id_of(members: Sequence[Member]) -> str:
    """Stable id: the first-fetched member's, so a story keeps its id as copies arrive."""
    first = min(members, key=lambda m: (m.fetched_at, m.article_id))
    return "s-" + first.article_id


def memberships(members: Sequence[Member], edges: Sequence[Edge]) -> list[Membership]:
    """Roles and evidence of one story: each copy keeps its edge to the original, else its best."""
    original = elect(members)
    sid = story_id_of(members)
    best: dict[str, Edge] = {}
    direct: dict[str, Edge] = {}
    for e in edges:
        for this, other in ((e.a, e.b), (e.b, e.a)):
            if other == original and (this not in direct or better(e, direct[this])):
                direct[this] = e
            if this not in best or better(e, best[this]):
                best[this] = e
    out = []
    for m in members:
        if m.article_id == original:
            out.append(Membership(article_id=m.article_id, story_id=sid, role="original",
                                  similarity=1.0, match_method="self"))
            continue
        ev = direct.get(m.article_id) or best.get(m.article_id)
        out.append(Membership(article_id=m.article_id, story_id=sid, role="copy",
                              similarity=round(ev.similarity, 4) if ev else 0.0,
                              match_method=ev.method if ev else "minhash"))
    return out


@dataclass(kw_only=True)
class DedupeStats:
    """Counts of one dedupe pass."""

    articles_processed: int = 0
    recleaned: int = 0
    boilerplate_learned: int = 0
    candidates: int = 0
    edges: int = 0
    new_stories: int = 0
    copies_merged: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


# --- Prefect tasks: one per batch ------------------------------------------------------------


@dataclass(kw_only=True)
class WorkItem:
    """One article of a batch, cleaned and ready to be signed."""

    article_id: str
    url: str
    source: str
    text: str
    canonical_url: str | None
    extracted_at: datetime
    known: bool = False  # processed before: its stored rows are replaced


@dataclass(kw_only=True)
class PreparedBatch:
    """Output of the prepare step."""

    items: list[WorkItem] = field(default_factory=list)
    learned: int = 0  # boilerplate blocks learned
    flagged: int = 0  # earlier pages flagged for re-cleaning
    recleaned: int = 0  # texts of this batch that changed


def _no_bands() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.empty(0, dtype=np.int16), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32))


@dataclass(kw_only=True)
class MatchedBatch:
    """Output of the match step: signature rows, band keys and verified edges."""

    signatures: list[tuple[str, str, str, str | None, str, int, datetime]] = field(
        default_factory=list)
    # (band, bucket, position of the article in the batch): numpy columns, ~42 rows an article.
    bands: tuple[np.ndarray, np.ndarray, np.ndarray] = field(default_factory=_no_bands)
    edges: list[Edge] = field(default_factory=list)
    candidates: int = 0
    reworded: store.RewordedRows | None = None  # the reworded stage's index rows


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
    cands = store.block_candidates(con, bp.MIN_PAGES, bp.SAMPLE_PAGES)
    if not cands:
        return []
    known = store.boilerplate_of(con, {c.site for c in cands})
    samples: dict[str, str] = {}
    for page in lines.values():
        for h, line in page:
            samples.setdefault(h, line.strip())
    if keep:
        cands = [c for c in cands
                 if c.site not in keep or not keep[c.site](samples.get(c.block_hash, ""))]
    groups: dict[tuple[str, tuple[str, ...]], list[store.BlockCandidate]] = defaultdict(list)
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
        stored = {a: bp.hashed_lines(raw) for a, raw in store.raw_texts(con, need).items()}
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
def _no_gc() -> Iterator[None]:
    """Cyclic GC paused for one step: a batch allocates millions of small acyclic objects
    (lines, words, tuples), and the collections they trigger rescan the whole live batch
    again and again (~10% of dedupe's CPU). Refcounting still frees them; GC resumes after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# DuckDB's buffer pool for the dedupe's writes: loading a batch's texts scans every stored
# text and needs more than a writer's default (out of memory at 64MB on the 10k bench store).
DB_MEMORY = READER_MEMORY


def prepare(con: duckdb.DuckDBPyConnection, limit: int,
            patterns: dict[str, list[str]], keep: dict[str, list[str]] | None = None
            ) -> PreparedBatch:
    """Take a batch of pending articles, learn their sites' boilerplate and clean their texts.

    keep: each source's allow-list (sources.toml `keep_blocks`): blocks never learned.
    """
    raise_memory(con, DB_MEMORY)
    with _no_gc():
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
    with store.batch_view(con, [a.article_id for a in arts], [a.source for a in arts]):
        store.replace_blocks(con, *_block_rows(lines))
        learned = _learn(con, {a.article_id: page for a, page in zip(arts, lines, strict=True)},
                         {s: bp.keep_matcher(e) for s, e in keep.items() if e})
        store.learn_blocks(con, learned)
        # Pages processed before these blocks were known still carry them: clean them again.
        out.flagged = store.mark_dirty(con, [(site, h) for site, h, _, _ in learned])
    out.learned = len(learned)
    known = store.boilerplate_of(con, sites)
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
    store.update_texts(con, changed)
    out.recleaned = len(changed)
    return out


def signing_texts(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]
                  ) -> dict[str, tuple[str, str]]:
    """(source, text) of stored articles as dedupe signs them: articles.text keeps learned
    blocks inside stories (bp.stored_text), which the batch's own signatures leave out."""
    texts = store.texts_of(con, article_ids)
    known = store.boilerplate_of(con, {src for src, _ in texts.values()})
    return {aid: (src, bp.signing_text(text, known[src]) if known[src] else text)
            for aid, (src, text) in texts.items()}


def sync_keep_blocks(con: duckdb.DuckDBPyConnection, keep: dict[str, list[str]]) -> int:
    """Apply the sources' allow-lists (sources.toml `keep_blocks`) to what was learned: learned
    blocks they match are set aside (boilerplate_kept) and their pages flagged for re-cleaning;
    blocks set aside by an entry since removed may be learned again. Idempotent; returns how
    many pages were flagged."""
    newly, stale = _keep_changes(con, keep)
    store.unkeep(con, stale)
    return store.set_aside(con, newly, store.KEPT_BY_LIST)


def _keep_changes(con: duckdb.DuckDBPyConnection, keep: dict[str, list[str]]
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(learned blocks the allow-lists now match, kept blocks they no longer match)."""
    matchers = {s: bp.keep_matcher(e) for s, e in keep.items() if e}
    learned = store.learned_samples(con, matchers)
    newly = [(site, h) for site, h, sample in learned if matchers[site](sample)]
    stale = [(site, h) for site, h, sample in store.kept_blocks(con, store.KEPT_BY_LIST)
             if site not in matchers or not matchers[site](sample)]
    return newly, stale


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
    state = store.block_state(con, site, block)
    if state is None:
        raise KeyError((site, block))
    if state == "learned":
        return store.set_aside(con, [(site, block)], store.KEPT_BY_FORGET)
    if state != store.KEPT_BY_FORGET:  # set aside by the allow-list: now for good
        store.relabel_kept(con, site, block, store.KEPT_BY_FORGET)
    return 0


def _keys(item: WorkItem) -> tuple[str, str | None]:
    """(url key, canonical key); a canonical link to the page itself is no evidence."""
    own = _url_key(item.url)
    canon = _url_key(item.canonical_url) if item.canonical_url else None
    return own, canon if canon != own else None


def _verify(reasons: set[str], o: Overlap, same_site: bool) -> str | None:
    """The strongest reason these candidates' overlap confirms, or None."""
    linked = o.small >= MIN_LINKED and o.shared >= min(MIN_SHARED, 10)
    if "url" in reasons and linked:
        return "url"
    if "canonical" in reasons and linked and (o.beyond_lead >= MIN_BEYOND_LEAD or o.small >= 0.9):
        return "canonical"
    if "shared_canonical" in reasons and same_story(o, same_site=same_site):
        return "canonical"
    if "exact_text" in reasons and o.shared >= MIN_SHARED:
        return "exact_text"
    if "minhash" in reasons and same_story(o, same_site=same_site):
        return "minhash"
    return None


def _reasons_by_keys(a: tuple[str, str | None, str], b: tuple[str, str | None, str]) -> set[str]:
    """Why two articles' (url key, canonical key, text hash) make them candidates."""
    out = set()
    if a[0] == b[0]:
        out.add("url")
    if a[1] == b[0] or b[1] == a[0]:
        out.add("canonical")
    if a[1] is not None and a[1] == b[1]:
        out.add("shared_canonical")
    if a[2] == b[2]:
        out.add("exact_text")
    return out


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _sign(items: Sequence[WorkItem], out: MatchedBatch
          ) -> tuple[dict[str, TextSig], dict[str, tuple[str, str | None, str]]]:
    """Shingles, keys, signature rows and LSH band keys of the batch's articles."""
    sigs: dict[str, TextSig] = {}
    keys: dict[str, tuple[str, str | None, str]] = {}
    buckets: list[int] = []
    positions: list[int] = []
    for n, item in enumerate(items):
        i = item.article_id
        w = words(item.text)
        sigs[i] = text_sig(item.text, w)
        own, canon = _keys(item)
        keys[i] = (own, canon, words_hash(w))
        out.signatures.append((i, item.source, own, canon, keys[i][2], sigs[i].size,
                               item.extracted_at))
        if sigs[i].size:
            buckets += band_keys(signature(sigs[i].shingles))
            positions.append(n)
    idx = np.repeat(np.array(positions, dtype=np.int32), BANDS)
    band = np.tile(np.arange(BANDS, dtype=np.int16), len(positions))
    out.bands = (band, np.array(buckets, dtype=np.int64), idx)
    return sigs, keys


def _pairs_within(groups: Iterable[list[str]]) -> Iterator[tuple[str, str]]:
    for group in groups:
        for x in range(len(group)):
            for y in range(x + 1, len(group)):
                yield _pair(group[x], group[y])


def match(con: duckdb.DuckDBPyConnection, batch: PreparedBatch) -> MatchedBatch:
    """Sign the batch, find candidates (keys, then LSH buckets) and verify them exactly."""
    with _no_gc():
        return _match(con, batch)


def _match(con: duckdb.DuckDBPyConnection, batch: PreparedBatch) -> MatchedBatch:
    out = MatchedBatch()
    items = {i.article_id: i for i in batch.items}
    order = [i.article_id for i in batch.items]
    sigs, keys = _sign(batch.items, out)
    reasons: dict[tuple[str, str], set[str]] = defaultdict(set)
    # Within the batch: shared keys and shared buckets.
    band, bucket, idx = out.bands
    by_bucket: dict[tuple[int, int], list[str]] = defaultdict(list)
    for b, k, n in zip(band.tolist(), bucket.tolist(), idx.tolist(), strict=True):
        by_bucket[(b, k)].append(order[n])
    # Copies share most of their 42 buckets: expand each distinct group of articles once.
    for pair in _pairs_within(list(g) for g in {tuple(g) for g in by_bucket.values()
                                                 if len(g) > 1}):
        reasons[pair].add("minhash")
    by_key: dict[str, list[str]] = defaultdict(list)
    for aid, (own, canon, th) in keys.items():
        for key in {own, canon or "", "#" + th} - {""}:
            by_key[key].append(aid)
    for p, q in _pairs_within(g for g in by_key.values() if len(g) > 1):
        reasons[(p, q)] |= _reasons_by_keys(keys[p], keys[q])
    # Against everything stored before.
    with store.batch_view(con, order, [items[i].source for i in order]):
        for n, old in store.band_matches(con, band, bucket, idx):
            reasons[_pair(order[n], old)].add("minhash")
        stored = store.key_matches(con, [k[0] for k in keys.values()],
                                   [k[1] for k in keys.values() if k[1]],
                                   [k[2] for k in keys.values()])
    stored_by_key: dict[str, list[tuple[str, tuple[str, str | None, str]]]] = defaultdict(list)
    for old, o_url, o_canon, o_hash in stored:
        for key in {o_url, o_canon or "", "#" + o_hash} - {""}:
            stored_by_key[key].append((old, (o_url, o_canon, o_hash)))
    for aid, mine in keys.items():
        for key in {mine[0], mine[1] or "", "#" + mine[2]} - {""}:
            for old, other in stored_by_key.get(key, []):
                reasons[_pair(aid, old)] |= _reasons_by_keys(mine, other)
    reasons = {p: r for p, r in reasons.items() if r}
    out.candidates = len(reasons)
    others = sorted({x for pair in reasons for x in pair if x not in items})
    site = {i: items[i].source for i in order}
    # Stored candidates' texts a chunk at a time, each let go once signed: late batches of a
    # big import have thousands (every earlier copy of their stories), and all their texts
    # at once were the match step's peak.
    for start in range(0, len(others), LOAD_TEXTS):
        for aid, (source, text) in signing_texts(con, others[start:start + LOAD_TEXTS]).items():
            site[aid] = source
            sigs[aid] = text_sig(text)
    for (p, q), found in sorted(reasons.items()):
        if p not in sigs or q not in sigs:
            continue
        o = overlap(sigs[p], sigs[q])
        method = _verify(found, o, site[p] == site[q])
        if method:
            out.edges.append(Edge(a=min(p, q), b=max(p, q), method=method,
                                  similarity=round(o.small, 4)))
    _reworded(con, batch.items, out)
    return out


# --- reworded copies: rare-term candidates, in-order sentence alignment ------------------------

_DAY = 86_400


def _day(t: datetime) -> int:
    """Days since 1970 (UTC) of a timestamp."""
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() // _DAY)


def _reworded(con: duckdb.DuckDBPyConnection, items: Sequence[WorkItem], out: MatchedBatch
              ) -> None:
    """Index the batch's rare terms and add 'reworded' edges for pairs the verbatim path left.

    Candidates: stored or batch articles sharing rare indexed terms within the time window
    (the best CANDIDATES of each), and pages tied by an attribution link. Each is verified by
    an in-order sentence alignment (tasks.reworded); a link lowers the coverage needed.
    """
    ids = [i.article_id for i in items]
    meta = store.reworded_meta(con, ids)
    # Only each article's terms are kept, as arrays (a whole Doc of every article of a big
    # batch would hold tens of MB of small ints); texts in a candidate pair are split again.
    fresh: Counter[int] = Counter()
    every: set[int] = set()
    kept: list[tuple[np.ndarray, set[int]]] = []
    for i in items:
        found, salient = rw.terms_of(i.text)
        if not i.known:
            fresh.update(found)
        every |= found
        kept.append((np.fromiter(found, dtype=np.int64, count=len(found)), salient))
    docs_n = store.processed_count(con) + sum(1 for i in items if not i.known)
    df = store.term_df(con, np.fromiter(every, dtype=np.int64, count=len(every)))
    del every
    for t, c in fresh.items():
        df[t] = df.get(t, 0) + c
    fday = np.array([_day(meta[a][3]) for a in ids], dtype=np.int32)
    pday = np.array([_day(meta[a][1]) if meta[a][1] is not None and meta[a][2] else -1  # type: ignore[arg-type]
                     for a in ids], dtype=np.int32)
    lookup = [rw.index_terms(arr.tolist(), salient, df, docs_n, rw.LOOKUP_TERMS)
              for arr, salient in kept]
    del kept
    chosen = [c[:rw.INDEX_TERMS] for c in lookup]
    idx = np.repeat(np.arange(len(ids), dtype=np.int32), [len(c) for c in chosen])
    terms = np.fromiter((t for c in chosen for t in c), dtype=np.int64, count=len(idx))
    q_idx = np.repeat(np.arange(len(ids), dtype=np.int32), [len(c) for c in lookup])
    q_terms = np.fromiter((t for c in lookup for t in c), dtype=np.int64, count=len(q_idx))
    own = {a: _url_key(i.url) for a, i in zip(ids, items, strict=True)}
    links = []
    for a in ids:
        with contextlib.suppress(ValueError):
            if meta[a][0] and _url_key(meta[a][0]) != own[a]:
                links.append((a, _url_key(meta[a][0])))
    out.reworded = store.RewordedRows(
        terms=terms, idx=idx, fday=fday[idx], pday=pday[idx], links=links,
        df_terms=np.fromiter(fresh.keys(), dtype=np.int64, count=len(fresh)),
        df_add=np.fromiter(fresh.values(), dtype=np.int32, count=len(fresh)))
    shared: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    # Within the batch: a term held by more batch articles than the cap says nothing.
    by_term: dict[int, list[int]] = defaultdict(list)
    for n, terms_of in enumerate(lookup):
        for t in terms_of:
            by_term[t].append(n)
    cap = rw.df_cap(docs_n)
    for t, group in by_term.items():
        if 1 < len(group) <= cap:
            for x in range(len(group)):
                for y in range(x + 1, len(group)):
                    u, v = group[x], group[y]
                    if abs(int(fday[u]) - int(fday[v])) <= rw.WINDOW_DAYS or (
                            pday[u] >= 0 and pday[v] >= 0
                            and abs(int(pday[u]) - int(pday[v])) <= rw.WINDOW_DAYS):
                        shared[ids[u]][ids[v]].add(t)
                        shared[ids[v]][ids[u]].add(t)
    by_key: dict[str, list[str]] = defaultdict(list)
    for a, k in own.items():
        by_key[k].append(a)
    linked = {_pair(a, b) for a, k in links for b in by_key.get(k, []) if b != a}
    with store.batch_view(con, ids, [i.source for i in items]):
        for n, other, ts in store.term_matches(con, q_terms, q_idx, fday[q_idx], pday[q_idx],
                                               rw.WINDOW_DAYS, rw.MIN_SHARED_TERMS):
            shared[ids[n]][other].update(ts)
        for way, key, other in store.attribution_matches(con, sorted({k for _, k in links}),
                                                          sorted(set(own.values()))):
            mine = [a for a, k in links if k == key] if way == "to" else by_key.get(key, [])
            linked.update(_pair(a, other) for a in mine)
    pairs = set(linked)
    for a in ids:
        pairs.update(_pair(a, b) for b in rw.best_candidates(shared.get(a, {}), df, docs_n))
    pairs -= {e.key() for e in out.edges}  # the verbatim path has verified these already
    if not pairs:
        return
    paired = {x for pair in pairs for x in pair}
    docs = {i.article_id: rw.doc_of(i.text) for i in items if i.article_id in paired}
    others = sorted(paired - docs.keys())
    for start in range(0, len(others), LOAD_TEXTS):
        for aid, (_, text) in store.texts_of(con, others[start:start + LOAD_TEXTS]).items():
            docs[aid] = rw.doc_of(text)
    missing: set[int] = set().union(*(docs[o].terms for o in others if o in docs)) - df.keys()
    df.update(store.term_df(con, np.fromiter(missing, dtype=np.int64, count=len(missing))))
    weight: dict[int, float] = {}
    out.candidates += len(pairs)
    for p, q in sorted(pairs):
        if p not in docs or q not in docs:
            continue
        for t in docs[p].terms | docs[q].terms:
            if t not in weight:
                weight[t] = rw.weight(df.get(t, 0), docs_n)
        al = rw.align(docs[p], docs[q], weight)
        if rw.verified(al, linked=(p, q) in linked):
            out.edges.append(Edge(a=p, b=q, method="reworded", similarity=round(al.coverage, 4)))


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
    with _no_gc():
        return _write(con, batch, matched)


def _write(con: duckdb.DuckDBPyConnection, batch: PreparedBatch, matched: MatchedBatch
           ) -> DedupeStats:
    ids = [i.article_id for i in batch.items]
    seen = [i.article_id for i in batch.items if i.known]  # only these have edges to replace
    with store.batch_view(con, ids, [i.source for i in batch.items]):
        store.replace_signatures(con, matched.signatures, matched.bands)
        if matched.reworded is not None:
            store.replace_reworded(con, matched.reworded)
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


@task(name="dedupe-prepare", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
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


@task(name="dedupe-write", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
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
# UPDATE of article_records.text costs in proportion to the table (measured: ~2 s per batch at
# 40k articles). A big backlog is therefore cut into at most this many batches, not into
# batches of a fixed size, so that cost stays linear in the backlog.
MAX_BATCHES = 8
# ... but a batch is held in memory (raw and cleaned texts, lines, words, shingles): ~110 bytes
# a word, measured on the bench set (2,000 real pages, 1.8M words: +200 MB), so a batch also
# stops at this many words (~400 MB), whatever the backlog. Words, not articles: the synthetic
# 100k store (250-word articles) keeps its 8 batches, while long real pages make smaller ones.
# 1.5M words made 17 batches of the 100k store (100k/10k time 12.6x, over the 12x target) and
# lowered the 10k-page import's peak by only ~25 MB (bench/run.py).
MAX_BATCH_WORDS = 3_500_000


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
