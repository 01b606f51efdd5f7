"""Reworded copies: rare-term candidates and in-order sentence alignment (pure: no DB, no Prefect).

A machine-reworded copy changes nearly every word sequence of its original, so word shingles
miss it, but it keeps the names, numbers and rare words, and it tells the story sentence by
sentence in the original's order. Candidates come from the rare terms two articles share;
verification aligns their sentences monotonically and measures how much of the shorter
text the alignment covers. Independent coverage of one event shares names too, but tells it
in its own order, so its sentences do not line up.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# --- terms -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")

_STOPWORD_TEXT = """
a about above after again against all almost along already also although always am among an
and another any anyone anything are around as at back be became because become been before
being below between both but by can cannot could did do does doing done down during each
either else even ever every few for from further get gets got had has have having he her here
hers herself him himself his how however i if in into is it its itself just last least less
like made make many may me might more most much must my myself near nearly neither never new
next no nor not now of off often on once one only onto or other others our ours ourselves out
over own per perhaps rather really said same say says she should since so some still such
than that the their theirs them themselves then there these they this those though through
thus to told too toward under until up upon us very via was we well were what whatever when
where whether which while who whom whose why will with within without would yet you your
yours yourself according added saying including week year years day days time
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

MIN_WORD = 3  # letters a word needs to count (numbers count from one digit)


def stem(word: str) -> str:
    """A light, consistent suffix strip: plurals, -ing, -ed, -ly, possessives."""
    w = word.removesuffix("s'") if word.endswith("s'") else word
    w = w.split("'")[0].split("’")[0]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    for suffix, keep in (("ing", 5), ("edly", 5), ("ed", 4), ("ly", 5), ("es", 5), ("s", 3)):
        if w.endswith(suffix) and len(w) - len(suffix) >= keep - 1 and not w.endswith("ss"):
            return w[: -len(suffix)]
    return w


@dataclass(frozen=True, slots=True)
class Term:
    """One token's part in matching: its stem's 63-bit hash and whether it looks like a name."""

    h: int
    salient: bool  # a capitalised word or a number: what rewording keeps


class _Terms(dict[str, Term | None]):
    """Token -> Term (None for stopwords and short words), shared by every text: news reuses
    its words, and a lookup costs far less than stemming and hashing again."""

    def __missing__(self, token: str) -> Term | None:
        low = token.lower()
        if low.isdigit():
            value: Term | None = Term(h=_hash("#" + (low.lstrip("0") or "0")), salient=True)
        elif len(low) < MIN_WORD or low in STOPWORDS:
            value = None
        else:
            s = stem(low)
            value = None if s in STOPWORDS else Term(h=_hash(s), salient=token[0].isupper())
        self[token] = value
        return value


def _hash(s: str) -> int:
    """A signed 63-bit hash (stored as BIGINT)."""
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") >> 1


_TERMS = _Terms()
_TERM_CACHE_MAX = 500_000


@dataclass(kw_only=True)
class Doc:
    """What the reworded stage needs of one article's text."""

    sentences: list[frozenset[int]]  # content terms of each sentence holding two or more
    terms: frozenset[int]  # all content terms of those sentences
    salient: frozenset[int]  # terms written as names or numbers somewhere in the text


def doc_of(text: str) -> Doc:
    """Sentences and terms of a cleaned article text (one pass over its tokens)."""
    if len(_TERMS) > _TERM_CACHE_MAX:
        _TERMS.clear()
    lookup = _TERMS.__getitem__
    sents: list[frozenset[int]] = []
    salient: set[int] = set()
    for line in text.splitlines():
        for sent in _SENTENCE_END.split(line):
            found = [t for t in map(lookup, _TOKEN.findall(sent)) if t is not None]
            terms = frozenset(t.h for t in found)
            if len(terms) >= 2:
                sents.append(terms)
                salient.update(t.h for t in found if t.salient)
    return Doc(sentences=sents, terms=frozenset().union(*sents), salient=frozenset(salient))


def forget_terms() -> None:
    """Let go of the token cache (a big batch's tokens are tens of MB; the next batch's differ)."""
    _TERMS.clear()


def terms_of(text: str) -> tuple[set[int], set[int]]:
    """(content terms, salient terms) of a whole text, without splitting its sentences: what
    indexing needs, in one pass."""
    if len(_TERMS) > _TERM_CACHE_MAX:
        _TERMS.clear()
    found = {t for t in map(_TERMS.__getitem__, set(_TOKEN.findall(text))) if t is not None}
    return {t.h for t in found}, {t.h for t in found if t.salient}


# --- rarity ------------------------------------------------------------------------------------

# A term is looked up in the index only while fewer than this many stored articles hold it
# (and this share of them): common terms say nothing about a copy and their postings are long.
DF_FLOOR = 40
DF_SHARE = 0.002
DF_CEIL = 400
INDEX_TERMS = 24  # terms indexed per article
LOOKUP_TERMS = 48  # terms looked up per article: more than indexed, so a copy and its
# original, choosing apart, still share enough of them
RARITY_BANDS = 8
# IDF as if the store held at least this many articles: in a tiny store every term would
# otherwise weigh the same as a stopword.
IDF_PRIOR_DOCS = 1000


def df_cap(docs: int) -> int:
    """The document frequency above which a term is too common to look up."""
    return min(DF_CEIL, max(DF_FLOOR, int(DF_SHARE * docs)))


def idf(df: int, docs: int) -> float:
    """Inverse document frequency of a term held by df of docs articles."""
    return math.log((max(docs, IDF_PRIOR_DOCS) + 1) / (df + 1)) + 1.0


def weight(df: int, docs: int) -> float:
    """A term's weight in sentence cosines: IDF, damped (log1p) so that the names two
    articles on one event share do not outweigh the rest of their sentences."""
    return math.log1p(idf(df, docs))


def index_terms(terms: Iterable[int], salient: Container[int], df: Mapping[int, int],
                docs: int, limit: int = INDEX_TERMS) -> list[int]:
    """The rarest terms below the df cap, names and numbers (salient) first among equally rare."""
    cap = df_cap(docs)
    rare = [t for t in terms if df.get(t, 0) <= cap]
    # Rarity in RARITY_BANDS coarse bands below the cap, names and numbers first within one:
    # strictly rarest-first would make a copy pick the words only it has (df 1) over those it
    # shares with its original (df 2), and in a small store every term is rare.
    band = (cap + RARITY_BANDS) // RARITY_BANDS
    rare.sort(key=lambda t: (df.get(t, 0) // band, t not in salient, t))
    return rare[:limit]


# --- verification ------------------------------------------------------------------------------

PAIR_MIN = 0.4  # cosine two sentences need to be aligned
MIN_ALIGNED = 3  # sentences a match needs aligned, whatever its coverage
# Share of the smaller term set the two texts must have in common before any alignment: a
# reworded copy keeps well over half its original's terms, most candidates far fewer.
MIN_TERM_SHARE = 0.4
# Aligned share of the shorter text's sentence weight, and of the longer text's: a reworded
# copy covers most of both; independent coverage of the same event, told in its own order,
# covers neither (see docs/dedupe-reworded.md for how these were chosen).
MIN_COVERAGE = 0.6
MIN_COVERAGE_LONG = 0.5
# When one page credits the other with an attribution link, the link excuses a partial copy
# (a few paragraphs of a long original), not a different text: the shorter text must still
# align as well as without a link.
MIN_COVERAGE_LINKED = MIN_COVERAGE
MIN_COVERAGE_LONG_LINKED = 0.2


@dataclass(kw_only=True, frozen=True)
class Alignment:
    """How two texts' sentences line up in order."""

    coverage: float  # aligned share of the shorter text's sentence weight
    coverage_long: float  # aligned share of the longer text's sentence weight
    aligned: int  # sentences aligned


NO_ALIGNMENT = Alignment(coverage=0.0, coverage_long=0.0, aligned=0)


def _matrix(sents: Sequence[frozenset[int]], col: Mapping[int, int], weight: np.ndarray
            ) -> np.ndarray:
    """Rows of IDF-weighted, L2-normalised term vectors, one per sentence."""
    m = np.zeros((len(sents), len(col)), dtype=np.float32)
    rows = np.repeat(np.arange(len(sents)), [len(s) for s in sents])
    cols = np.fromiter((col[t] for s in sents for t in s), dtype=np.int64, count=len(rows))
    m[rows, cols] = weight[cols]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms


def _monotone(gain: np.ndarray) -> float:
    """The most gain a one-to-one monotone alignment collects (gain[i, j]: row i to column j)."""
    # dp[j]: best total of the rows so far using columns before j; one numpy pass per row.
    dp = np.zeros(gain.shape[1] + 1)
    for row in gain:
        dp = np.maximum.accumulate(np.concatenate((dp[:1], np.maximum(dp[1:], dp[:-1] + row))))
    return float(dp[-1])


def align(a: Doc, b: Doc, weights: Mapping[int, float]) -> Alignment:
    """The best one-to-one, in-order alignment of two texts' sentences (cosine >= PAIR_MIN)."""
    short, long = (a, b) if len(a.sentences) <= len(b.sentences) else (b, a)
    if (len(short.sentences) < MIN_ALIGNED or len(short.terms & long.terms)
            < MIN_TERM_SHARE * min(len(short.terms), len(long.terms))):
        return NO_ALIGNMENT
    vocab = list(short.terms | long.terms)
    col = {t: i for i, t in enumerate(vocab)}
    w = np.array([weights.get(t, 1.0) for t in vocab], dtype=np.float32)
    hit = (_matrix(short.sentences, col, w) @ _matrix(long.sentences, col, w).T) >= PAIR_MIN
    if hit.sum() < MIN_ALIGNED:
        return NO_ALIGNMENT
    ws = np.array([len(s) for s in short.sentences], dtype=np.float64)
    wl = np.array([len(s) for s in long.sentences], dtype=np.float64)
    return Alignment(coverage=_monotone(hit * ws[:, None]) / float(ws.sum()),
                     coverage_long=_monotone(hit.T * wl[:, None]) / float(wl.sum()),
                     aligned=int(_monotone(hit.astype(np.float64))))


def verified(al: Alignment, *, linked: bool = False) -> bool:
    """Whether an alignment proves a reworded copy (linked: an attribution link ties the pair)."""
    if al.aligned < MIN_ALIGNED:
        return False
    if linked:
        return al.coverage >= MIN_COVERAGE_LINKED and al.coverage_long >= MIN_COVERAGE_LONG_LINKED
    return al.coverage >= MIN_COVERAGE and al.coverage_long >= MIN_COVERAGE_LONG


# --- candidates --------------------------------------------------------------------------------

MIN_SHARED_TERMS = 3  # indexed terms two articles must share to be compared
CANDIDATES = 4  # best-scored candidates verified per article
WINDOW_DAYS = 30  # articles further apart in time are never candidates


def best_candidates(shared: Mapping[str, Iterable[int]], df: Mapping[int, int], docs: int,
                    limit: int = CANDIDATES) -> list[str]:
    """The `limit` candidates sharing the most IDF weight, each sharing >= MIN_SHARED_TERMS."""
    scored = []
    for other, terms in shared.items():
        ts = set(terms)
        if len(ts) >= MIN_SHARED_TERMS:
            scored.append((-sum(idf(df.get(t, 0), docs) for t in ts), other))
    scored.sort()
    return [o for _, o in scored[:limit]]
