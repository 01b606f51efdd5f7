"""The batch types dedupe's steps pass each other (and Prefect pickles between tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from newsflow.dedupe.election import Edge


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
    reworded: RewordedRows | None = None  # the reworded stage's index rows


@dataclass(kw_only=True)
class RewordedRows:
    """The reworded index rows of a batch: postings, attribution links and new df counts."""

    terms: np.ndarray  # int64 term of each posting
    idx: np.ndarray  # int32 batch position of each posting
    fday: np.ndarray  # int32 fetch day (days since 1970) of each posting
    pday: np.ndarray  # int32 trusted publication day, -1 when none
    links: list[tuple[str, str]]  # (article_id, target url_key)
    df_terms: np.ndarray  # int64 terms whose df grows
    df_add: np.ndarray  # int32 by how much
