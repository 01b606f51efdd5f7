"""Dedupe's match step: sign a batch, find candidates (URL, text, MinHash, reworded), verify them."""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

import duckdb
import numpy as np

from newsflow.dedupe import reworded as rw
from newsflow.dedupe.election import Edge, cached_url_key
from newsflow.dedupe.signature import BANDS, band_keys, signature, words, words_hash
from newsflow.dedupe.types import MatchedBatch, PreparedBatch, RewordedRows, WorkItem
from newsflow.dedupe.verify import (
    MIN_BEYOND_LEAD,
    MIN_LINKED,
    MIN_SHARED,
    Overlap,
    TextSig,
    overlap,
    same_story,
    text_sig,
)
from storage import dedupe as store
from storage import reworded as store_rw
from storage.batch import batch_view
from tasks.dedupe_prepare import LOAD_TEXTS, no_gc, signing_texts

# Candidate pairs of the reworded stage whose texts are split into sentences at once, and
# batch articles whose candidates are gathered at once.
VERIFY_CHUNK = 500
CANDIDATE_CHUNK = 500

def _keys(item: WorkItem) -> tuple[str, str | None]:
    """(url key, canonical key); a canonical link to the page itself is no evidence."""
    own = cached_url_key(item.url)
    canon = cached_url_key(item.canonical_url) if item.canonical_url else None
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
    with no_gc():
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
    with batch_view(con, order, [items[i].source for i in order]):
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
    del sigs
    try:
        _reworded(con, batch.items, out)
    finally:
        rw.forget_terms()
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
    an in-order sentence alignment (newsflow.dedupe.reworded); a link lowers the coverage needed.
    """
    ids = [i.article_id for i in items]
    meta = store_rw.reworded_meta(con, ids)
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
    docs_n = store_rw.processed_count(con) + sum(1 for i in items if not i.known)
    df = store_rw.term_df(con, np.fromiter(every, dtype=np.int64, count=len(every)))
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
    own = {a: cached_url_key(i.url) for a, i in zip(ids, items, strict=True)}
    links = []
    for a in ids:
        with contextlib.suppress(ValueError):
            if meta[a][0] and cached_url_key(meta[a][0]) != own[a]:
                links.append((a, cached_url_key(meta[a][0])))
    out.reworded = RewordedRows(
        terms=terms, idx=idx, fday=fday[idx], pday=pday[idx], links=links,
        df_terms=np.fromiter(fresh.keys(), dtype=np.int64, count=len(fresh)),
        df_add=np.fromiter(fresh.values(), dtype=np.int32, count=len(fresh)))
    # Within the batch: a term held by more batch articles than the cap says nothing.
    by_term: dict[int, list[int]] = defaultdict(list)
    for n, terms_of in enumerate(lookup):
        for t in terms_of:
            by_term[t].append(n)
    cap = rw.df_cap(docs_n)

    def near(u: int, v: int) -> bool:
        return abs(int(fday[u]) - int(fday[v])) <= rw.WINDOW_DAYS or bool(
            pday[u] >= 0 and pday[v] >= 0 and abs(int(pday[u]) - int(pday[v])) <= rw.WINDOW_DAYS)

    by_key: dict[str, list[str]] = defaultdict(list)
    for a, k in own.items():
        by_key[k].append(a)
    linked = {_pair(a, b) for a, k in links for b in by_key.get(k, []) if b != a}
    pairs: set[tuple[str, str]] = set()
    q_fday, q_pday = fday[q_idx], pday[q_idx]
    with batch_view(con, ids, [i.source for i in items]):
        for way, key, other in store_rw.attribution_matches(con, sorted({k for _, k in links}),
                                                             sorted(set(own.values()))):
            mine = [a for a, k in links if k == key] if way == "to" else by_key.get(key, [])
            linked.update(_pair(a, other) for a in mine)
        # A chunk of the batch at a time: the terms each article shares with each other one,
        # held for a whole batch of a big import, were its dedupe's peak.
        for start in range(0, len(ids), CANDIDATE_CHUNK):
            part = range(start, min(start + CANDIDATE_CHUNK, len(ids)))
            shared: dict[int, dict[str, set[int]]] = {n: defaultdict(set) for n in part}
            for u in part:
                for t in lookup[u]:
                    group = by_term[t]
                    if 1 < len(group) <= cap:
                        for v in group:
                            if v != u and near(u, v):
                                shared[u][ids[v]].add(t)
            sel = (q_idx >= part.start) & (q_idx < part.stop)
            for n, other, ts in store_rw.term_matches(con, q_terms[sel], q_idx[sel], q_fday[sel],
                                                      q_pday[sel], rw.WINDOW_DAYS,
                                                      rw.MIN_SHARED_TERMS):
                shared[n][other].update(ts)
            for n in part:
                pairs.update(_pair(ids[n], b) for b in rw.best_candidates(shared[n], df, docs_n))
    pairs |= linked
    del by_term, lookup
    pairs -= {e.key() for e in out.edges}  # the verbatim path has verified these already
    if not pairs:
        return
    out.candidates += len(pairs)
    texts = {i.article_id: i.text for i in items}
    weight: dict[int, float] = {}
    ordered = sorted(pairs)
    # A chunk of pairs at a time: a Doc holds a text's sentence term sets, and every paired
    # article's at once grew with the batch (a big import's dedupe peak); a text in pairs of
    # two chunks is split twice.
    for start in range(0, len(ordered), VERIFY_CHUNK):
        chunk = ordered[start:start + VERIFY_CHUNK]
        docs = _docs(con, {x for pair in chunk for x in pair}, texts, df)
        for p, q in chunk:
            if p not in docs or q not in docs:
                continue
            for t in docs[p].terms | docs[q].terms:
                if t not in weight:
                    weight[t] = rw.weight(df.get(t, 0), docs_n)
            al = rw.align(docs[p], docs[q], weight)
            if rw.verified(al, linked=(p, q) in linked):
                out.edges.append(Edge(a=p, b=q, method="reworded", similarity=round(al.coverage, 4)))


def _docs(con: duckdb.DuckDBPyConnection, ids: set[str], texts: dict[str, str],
          df: dict[int, int]) -> dict[str, rw.Doc]:
    """Docs of these articles (batch texts, else stored ones); df gains the stored ones' terms."""
    docs = {a: rw.doc_of(texts[a]) for a in ids if a in texts}
    others = sorted(ids - docs.keys())
    for start in range(0, len(others), LOAD_TEXTS):
        for aid, (_, text) in store.texts_of(con, others[start:start + LOAD_TEXTS]).items():
            docs[aid] = rw.doc_of(text)
    missing: set[int] = set().union(*(docs[o].terms for o in others if o in docs)) - df.keys()
    df.update(store_rw.term_df(con, np.fromiter(missing, dtype=np.int64, count=len(missing))))
    return docs
