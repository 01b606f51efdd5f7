"""Per-site boilerplate: paragraph blocks that recur across otherwise different pages of one site."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
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


GRAM = 8  # characters: language-agnostic (CJK has no spaces); unrelated articles share few
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


# --- what of a learned block leaves articles.text ---------------------------------------------
#
# Learning says a block recurs on unrelated pages of a site; it does not say the block is
# chrome wherever it stands. A site may repeat a context paragraph ("X has denied the claims")
# inside several of its own stories: readers need it there. So articles.text loses a learned
# block only where it is chrome by position or by kind; signatures (signing_text) still ignore
# every learned block, so copies match as before.

# Lines this short are labels ("ADVERTISEMENT", "DMCA compliant image", "Leave a Comment"),
# not story paragraphs: a learned one goes wherever it stands.
LABEL_WORDS = 8
# Kinds of chrome a learned block may be wherever it stands: disclaimers and legal lines,
# calls to action, bylines, newsletter and share lines. Searched in the normalized block.
CHROME_KINDS = {
    # Specific phrases only: a story's own paragraph may well mention copyright or trademarks.
    "disclaimer": re.compile(
        r"denial of responsibility|disclaimer:|all rights reserved|trademarks belong|"
        r"^(©|\(c\) \d{4}|copyright (©|\(c\)|\d{4}))|\bdmca\b|automatic aggregator|"
        r"do not claim ownership|for any complaint|views expressed (here|in this)|"
        r"(originally|first) (appeared|published) (on|in|at|by)|"
        r"republished (with permission|from|under)"),
    "call to action": re.compile(
        r"^(subscribe|sign up|click here|read more|read also|see also|related\b|also read|"
        r"watch:|listen:|download (our|the)|get (our|the latest)|join (us|our)|support (us|our)|"
        r"donate|leave a (comment|reply)|comments?\b|advertisement|sponsored|scroll to continue)|"
        r"subscribe (to|now|today)|sign up (for|to)|follow us (on|at)|(our|the) newsletter"),
    "byline": re.compile(
        r"^(written by|reporting by|editing by|photo:|image:|credit:|source:)\s|"
        r"contributed to this report|staff (writer|reporter)|getty images"),
    "share": re.compile(r"^(share|tweet|email|print|whatsapp|facebook|twitter|linkedin)\b"
                        r"(\W+(this|on|via|article|story|facebook|twitter|email|linkedin|x)\b.*)?$"),
}


def chrome_kind(line: str) -> str | None:
    """The kind of chrome a block is whatever its position ('label' for a short line), or None."""
    norm = normalize_block(line)
    if len(norm.split()) < LABEL_WORDS:
        return "label"
    return next((kind for kind, rx in CHROME_KINDS.items() if rx.search(norm)), None)


def keep_matcher(entries: Sequence[str]) -> Callable[[str], bool]:
    """Whether a block is on a source's allow-list (sources.toml `keep_blocks`): an entry is a
    regex searched in the block, or a text the normalized block contains."""
    rxs = [re.compile(e, re.IGNORECASE) for e in entries]
    texts = [normalize_block(e) for e in entries]

    def kept(line: str) -> bool:
        norm = normalize_block(line)
        return any(r.search(line) for r in rxs) or any(t and t in norm for t in texts)

    return kept


def signing_text(lines: str | list[tuple[str, str]], learned: set[str] | frozenset[str],
                 patterns: Sequence[re.Pattern[str]] = ()) -> str:
    """What dedupe signs: the text without ANY learned block or pattern line (clean_text)."""
    return clean_text(lines, learned, patterns)


def stored_text(raw_text: str | list[tuple[str, str]], learned: set[str] | frozenset[str],
                patterns: Sequence[re.Pattern[str]] = ()) -> str:
    """What articles.text keeps: learned blocks go at the article's edges (no story line
    between them and its start or end) and where they are chrome by kind; a learned block with
    story lines on both sides stays. Pattern lines go wherever they stand."""
    lines = hashed_lines(raw_text) if isinstance(raw_text, str) else raw_text
    lines = [(h, line) for h, line in lines if not any(p.search(line) for p in patterns)]
    # A story line: not learned, and long enough to be a paragraph (labels do not count).
    story = [h not in learned and len(line.split()) >= LABEL_WORDS for h, line in lines]
    first = story.index(True) if any(story) else len(lines)
    last = len(story) - 1 - story[::-1].index(True) if any(story) else -1
    return "\n".join(line for n, (h, line) in enumerate(lines)
                     if h not in learned or (first < n < last and chrome_kind(line) is None))
