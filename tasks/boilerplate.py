"""Per-site boilerplate: paragraph blocks that recur across otherwise different pages of one site."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# A block on this many pages of a site, each about something else, is the site's chrome.
# Three, not two: two copies of one story quoting the same paragraph must never qualify, and
# the "otherwise dissimilar" test below keeps three copies of one story from qualifying too.
MIN_PAGES = 3
# Two pages whose own (rare) blocks overlap this much tell the same story: they count once.
SAME_PAGE_JACCARD = 0.5
# How many pages of a block the dissimilarity test looks at: enough to find three distinct ones.
SAMPLE_PAGES = 40



def normalize_block(line: str) -> str:
    """One spelling per block: case, spacing and surrounding punctuation do not matter."""
    return " ".join(line.split()).strip("*-•| ").lower()


def block_hash(line: str) -> str:
    """Stable key of a block (16 hex digits of SHA-256 of its normalized text)."""
    return hashlib.sha256(normalize_block(line).encode()).hexdigest()[:16]


def hashed_lines(raw_text: str) -> list[tuple[str, str]]:
    """(block hash, line) of every non-empty line of an extracted text, in order."""
    out = []
    for line in raw_text.splitlines():
        norm = normalize_block(line)
        if norm:
            out.append((hashlib.sha256(norm.encode()).hexdigest()[:16], line.rstrip()))
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
class PageBlocks:
    """One page of a site, as the blocks it holds."""

    article_id: str
    blocks: frozenset[str]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def distinct_pages(pages: Sequence[PageBlocks], site_counts: Mapping[str, int]) -> int:
    """How many of pages are about different things, judged on their rare blocks only.

    A page's rare blocks are those on fewer than MIN_PAGES pages of the site: its own story.
    Pages whose rare blocks overlap (copies of one story) count once; a page with no rare
    block says nothing about what it is, so it does not count.
    """
    chosen: list[frozenset[str]] = []
    for page in sorted(pages, key=lambda p: p.article_id):
        rare = frozenset(b for b in page.blocks if site_counts.get(b, 0) < MIN_PAGES)
        if rare and all(_jaccard(rare, other) < SAME_PAGE_JACCARD for other in chosen):
            chosen.append(rare)
            if len(chosen) >= MIN_PAGES:
                break
    return len(chosen)


def is_boilerplate(pages: Sequence[PageBlocks], site_counts: Mapping[str, int]) -> bool:
    """True when the block these pages share recurs on MIN_PAGES pages about different things."""
    return len(pages) >= MIN_PAGES and distinct_pages(pages, site_counts) >= MIN_PAGES
