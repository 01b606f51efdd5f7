"""Dedupe scaling on synthetic articles: 10k vs 100k, and 1,000 new articles on a 100k store.

Articles are seeded random texts (~250 words from a 5,000-word vocabulary) from 50 sites; one
in five is a lightly edited copy of an earlier article on another site, so dedupe finds,
verifies and merges real copies at every size. Dedupe runs without Prefect
(tasks.dedupe.run_all, the flow's loop as plain calls), so the figures are dedupe's own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsflow.types import Article, Registry, Source
from newsflow.urls import article_id
from storage import writes
from storage.db import writer

SITES = 50
COPY_SHARE = 0.2
WORDS_PER_ARTICLE = 250
_START = datetime(2024, 1, 1, tzinfo=UTC)


def _vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)]


def _text(rng: random.Random, vocab: list[str]) -> str:
    """Paragraphs of random words: distinct enough that unrelated articles never match."""
    paras = []
    for _ in range(5):
        words = [rng.choice(vocab) for _ in range(WORDS_PER_ARTICLE // 5)]
        paras.append(" ".join(words).capitalize() + ".")
    return "\n".join(paras)


def _edit(rng: random.Random, text: str, vocab: list[str]) -> str:
    """A syndicated copy: a few words swapped and a credit line added."""
    words = text.split(" ")
    for _ in range(5):
        words[rng.randrange(len(words))] = rng.choice(vocab)
    return " ".join(words) + "\nThis story was originally published elsewhere."


def registry(sites: int = SITES) -> Registry:
    """A registry of the synthetic sites (a tenth of them aggregators)."""
    return Registry(path="(synthetic)", sources=tuple(
        Source(name=f"site{i:02d}", publisher=f"Publisher {i}",
               kind="aggregator" if i % 10 == 9 else "original", domains=(f"site{i:02d}.example",))
        for i in range(sites)))


def articles(n: int, *, seed: int = 1, offset: int = 0) -> Iterator[Article]:
    """n synthetic articles, numbered from offset; the same (seed, offset) gives the same ones."""
    rng = random.Random(seed * 1_000_003 + offset)
    vocab = _vocabulary(random.Random(seed))
    recent: list[str] = []
    for i in range(offset, offset + n):
        site = f"site{rng.randrange(SITES):02d}"
        if recent and rng.random() < COPY_SHARE:
            text = _edit(rng, rng.choice(recent), vocab)
        else:
            text = _text(rng, vocab)
            recent = (recent + [text])[-200:]
        url = f"https://{site}.example/news/{i:07d}-story"
        yield Article(article_id=article_id(url), url=url, source=site, text=text, raw_text=text,
                      fetched_at=_START + timedelta(seconds=i), title=f"Story {i}")


def fill(db: Path, n: int, *, seed: int = 1, offset: int = 0, chunk: int = 2000) -> None:
    """Store n synthetic articles (and the sites) in db."""
    with writer(db) as con:
        writes.upsert_sources(con, registry())
    batch: list[Article] = []
    for a in articles(n, seed=seed, offset=offset):
        batch.append(a)
        if len(batch) >= chunk:
            with writer(db) as con:
                writes.store_articles(con, batch)
            batch = []
    if batch:
        with writer(db) as con:
            writes.store_articles(con, batch)


def timed_dedupe(db: Path) -> tuple[float, int]:
    """Seconds to dedupe everything pending in db, and how many articles that was."""
    from tasks.dedupe import run_all

    start = time.perf_counter()
    stats = run_all(str(db))
    return time.perf_counter() - start, stats.articles_processed


def measure(workdir: Path, small: int = 10_000, large: int = 100_000, added: int = 1_000
            ) -> dict[str, float]:
    """Dedupe time for `small` and `large` fresh stores, then for `added` more on the large one."""
    out: dict[str, float] = {}
    for n in (small, large):
        db = workdir / f"dedupe-{n}.duckdb"
        fill(db, n)
        out[f"dedupe_{n}_s"], out[f"dedupe_{n}_articles"] = timed_dedupe(db)
    db = workdir / f"dedupe-{large}.duckdb"
    fill(db, added, offset=large)
    out[f"add_{added}_s"], out[f"add_{added}_articles"] = timed_dedupe(db)
    out["ratio_large_small"] = out[f"dedupe_{large}_s"] / out[f"dedupe_{small}_s"]
    return out
