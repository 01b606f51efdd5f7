"""Verification: how much two texts overlap, and whether that makes them one story."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from newsflow.dedupe.signature import shingle_hashes, shingles_of, words

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
