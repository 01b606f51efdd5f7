"""Stories: members, edges, connected components and the election of each story's original."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from newsflow.publishers import publisher_key
from newsflow.urls import normalize_url, url_key

# Election normalizes every body link of every member, and copies carry the same links: cached
# (a ValueError is not cached, so a bad link raises again, as before).
_normalize_url = functools.lru_cache(maxsize=1 << 16)(normalize_url)
cached_url_key = functools.lru_cache(maxsize=1 << 16)(url_key)

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
    hits = [i for i in by_key.get(cached_url_key(url), []) if i != source]
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
    credited = {publisher_key(m.credited_publisher or "") for m in members} - {""}
    hits = [m for m in pool if publisher_key(m.publisher or m.sitename or "") in credited]
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
        by_key[cached_url_key(m.url)].append(m.article_id)

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
