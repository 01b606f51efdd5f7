"""Per-site boilerplate: paragraph blocks that recur across otherwise different pages of one site."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A block on this many pages of a site, each about something else, is the site's chrome.
# Three, not two: two copies of one story quoting the same paragraph must never qualify, and
# the "otherwise dissimilar" test below keeps three copies of one story from qualifying too.
MIN_PAGES = 3
# When do two pages holding a candidate block count once (as copies of one story)? The old
# test looked at their rare blocks only; a site that re-runs a story six times with a new lead
# line each time makes every body paragraph recur on six pages (none rare) and each copy's lead
# a rare block of its own, so it took the copies for six different pages and learned the
# story's own paragraphs as chrome. Two tests now, either one enough:
# - near-duplicates: most of the smaller page's text (its known boilerplate left out; counted
#   in characters, by block) is blocks of the other;
NEAR_DUPLICATE = 0.8
# - or their own texts (what is left of each once the blocks ALL the sampled pages share are
#   set aside) share this share of the smaller one's character 8-grams (a reworded lead).
# Briefs shorter than the disclaimer they carry are neither: their own paragraphs differ.
SAME_OWN_TEXT = 0.5
# How many pages of a block the dissimilarity test looks at: enough to find three distinct ones.
SAMPLE_PAGES = 40


def normalize_block(line: str) -> str:
    """One spelling per block: case, spacing and surrounding punctuation do not matter."""
    return " ".join(line.split()).strip("*-•| ").lower()


def block_hash(line: str) -> str:
    """Stable key of a block (16 hex digits of SHA-256 of its normalized text)."""
    return hashlib.sha256(normalize_block(line).encode()).hexdigest()[:16]


def hashed_lines(raw_text: str, seen: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(block hash, line) of every non-empty line of an extracted text, in order.

    seen: line -> hash ("" for a blank line) shared by the pages of a batch, so a line that
    recurs (chrome, copies of a story) is normalized and hashed once.
    """
    cache: dict[str, str] = {} if seen is None else seen
    out = []
    for line in raw_text.splitlines():
        h = cache.get(line)
        if h is None:
            norm = normalize_block(line)
            h = cache[line] = hashlib.sha256(norm.encode()).hexdigest()[:16] if norm else ""
        if h:
            out.append((h, line.rstrip()))
    return out


def blocks_of(raw_text: str) -> dict[str, str]:
    """The distinct blocks (non-empty lines) of an extracted text: hash -> first line seen."""
    out: dict[str, str] = {}
    for h, line in hashed_lines(raw_text):
        out.setdefault(h, line.strip())
    return out


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    """A source's extra boilerplate regexes (sources.toml `boilerplate`), compiled once."""
    return [re.compile(p) for p in patterns]


def clean_text(raw_text: str | list[tuple[str, str]], boilerplate: set[str] | frozenset[str],
               patterns: Sequence[re.Pattern[str]] = ()) -> str:
    """raw_text (or its hashed_lines) without the site's boilerplate blocks and lines matching
    the source's patterns."""
    lines = hashed_lines(raw_text) if isinstance(raw_text, str) else raw_text
    return "\n".join(line for h, line in lines
                     if h not in boilerplate and not any(p.search(line) for p in patterns))


@dataclass(kw_only=True, frozen=True)
class PageLines:
    """One page of a site holding a candidate block: its (block hash, line) pairs, the site's
    known boilerplate left out."""

    article_id: str
    lines: tuple[tuple[str, str], ...]


GRAM = 8  # characters: language-agnostic (CJK has no spaces); unrelated articles share ~3%
# Own texts are compared on their first characters only: a reworded lead shows there, and
# the pages of a chrome block are whole different stories, which need not be read to the end.
OWN_CHARS = 2000


def _shingles(text: str) -> set[str]:
    """Distinct GRAM-character pieces of text (case and spacing normalized)."""
    t = " ".join(text.lower().split())
    return {t[i:i + GRAM] for i in range(len(t) - GRAM + 1)} if len(t) >= GRAM else (
        {t} if t else set())


def _alike(a: set[str], b: set[str], share: float) -> bool:
    return len(a & b) >= share * min(len(a), len(b))


def _near_duplicates(a: dict[str, int], b: dict[str, int]) -> bool:
    """Whether most of the smaller page's characters are in blocks the other holds too."""
    small, large = (a, b) if sum(a.values()) <= sum(b.values()) else (b, a)
    total = sum(small.values())
    return total > 0 and sum(n for h, n in small.items() if h in large) >= NEAR_DUPLICATE * total


def distinct_pages(pages: Sequence[PageLines]) -> int:
    """How many of these pages are about different things (the first MIN_PAGES are enough).

    Two pages count once when they are near-duplicates or their own texts (without the blocks
    every page holds, the candidate among them) read alike; a page with no text of its own
    says nothing about what it is and does not count. The verdict depends on the pages only,
    not on which shared block is judged, so the caller judges every block on exactly these
    pages at once.
    """
    if not pages:
        return 0
    common = set.intersection(*({h for h, _ in p.lines} for p in pages))
    chosen: list[tuple[set[str], dict[str, int]]] = []
    for page in sorted(pages, key=lambda p: p.article_id):
        own = _shingles("\n".join(line for h, line in page.lines if h not in common)[:OWN_CHARS])
        if not own:
            continue
        sizes: dict[str, int] = {}
        for h, line in page.lines:
            sizes[h] = sizes.get(h, 0) + len(line)
        if any(_alike(own, o, SAME_OWN_TEXT) or _near_duplicates(sizes, z) for o, z in chosen):
            continue
        chosen.append((own, sizes))
        if len(chosen) >= MIN_PAGES:
            break
    return len(chosen)


def is_boilerplate(pages: Sequence[PageLines]) -> bool:
    """True when the blocks these pages all hold recur on MIN_PAGES pages about different
    things."""
    return len(pages) >= MIN_PAGES and distinct_pages(pages) >= MIN_PAGES
