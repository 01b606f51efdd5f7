"""Dedupe test helpers: real extracted texts, a store of articles, reading stories back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsflow.dedupe.types import DedupeStats
from newsflow.types import Article, RawPage, Registry, Source
from newsflow.urls import article_id, normalize_url
from storage import writes
from storage.db import reader, writer
from tasks.dedupe import run_all
from tasks.extract import extract_page
from tests.conftest import recorded_pages

T0 = datetime(2024, 3, 1, 8, tzinfo=UTC)

DISCLAIMER = [
    "Denial of responsibility! Daily Mirror Hub is an automatic aggregator of Global media. In "
    "each content, the hyperlink to the primary source is specified. All trademarks belong to "
    "their rightful owners, and all materials to their authors. For any complaint, please reach "
    "us at - complaints@mirrorhub.example. We will take necessary action within 24 hours.",
    "Daily Mirror Hub is an automatic aggregator of the all world's media. The content on this "
    "website is collected automatically from publicly available sources and is provided for "
    "general information purposes only. We do not claim ownership of any of the news articles, "
    "images or videos displayed on this website.",
    "DMCA compliant image",
    "Leave a Comment",
]

REGISTRY = Registry(path="test", sources=(
    Source(name="thehill", publisher="The Hill", kind="original", domains=("thehill.com",)),
    Source(name="kxan", publisher="KXAN", kind="original", domains=("kxan.com",)),
    Source(name="apnews", publisher="AP", kind="original", domains=("apnews.com",)),
    Source(name="foxnews", publisher="Fox News", kind="original", domains=("foxnews.com",)),
    Source(name="guardian", publisher="The Guardian", kind="original",
           domains=("theguardian.com",)),
    Source(name="cnn", publisher="CNN", kind="original", domains=("cnn.com",)),
    Source(name="venturebeat", publisher="VentureBeat", kind="original",
           domains=("venturebeat.com",)),
    Source(name="threatpost", publisher="Threatpost", kind="original", domains=("threatpost.com",)),
    Source(name="station", publisher="KVTN 4", kind="syndicator", domains=("kvtn4.example",)),
    Source(name="mirrorhub", publisher="Daily Mirror Hub", kind="aggregator",
           domains=("mirrorhub.example",)),
    Source(name="digest", publisher="Digest Daily", kind="aggregator", domains=("digest.example",)),
    Source(name="republic", publisher="AIM Media Indiana", kind="original",
           domains=("therepublic.com",)),
    Source(name="ledger", publisher="The Daily Ledger", kind="original",
           domains=("dailyledger.example",)),
))


@pytest.fixture(scope="session")
def real_texts() -> dict[str, list[str]]:
    """Paragraphs of real recorded pages as trafilatura extracts them, keyed by file stem."""
    out = {}
    for p in recorded_pages():
        a = extract_page(RawPage(url=p.url, source="t", fetched_at=T0, body=p.html()))
        if isinstance(a, Article):
            out[p.file.removesuffix(".html.gz")] = a.text.splitlines()
    return out


@dataclass
class Store:
    """A DuckDB file of articles that tests add to and dedupe."""

    db: str

    def add(self, url: str, paragraphs: list[str], *, source: str, minutes: float = 0,
            canonical: str | None = None, links: tuple[str, ...] = (),
            published: datetime | None = None, trusted: bool = True,
            title: str | None = None, attribution: str | None = None,
            credited: str | None = None, sitename: str | None = None) -> str:
        text = "\n".join(paragraphs)
        a = Article(article_id=article_id(url), url=normalize_url(url), source=source,
                    fetched_at=T0 + timedelta(minutes=minutes), text=text, raw_text=text,
                    canonical_url=normalize_url(canonical) if canonical else None,
                    links=links, published_at=published, date_trusted=trusted,
                    title=title or url.rsplit("/", 1)[-1], attribution_url=attribution,
                    credited_publisher=credited, sitename=sitename)
        with writer(self.db) as con:
            writes.store_articles(con, [a])
        return a.article_id

    def dedupe(self, batch_size: int = 2000, patterns: dict[str, list[str]] | None = None,
               keep: dict[str, list[str]] | None = None) -> DedupeStats:
        return run_all(self.db, batch_size=batch_size, patterns=patterns, keep=keep)

    def story_of(self, aid: str) -> str:
        with reader(self.db) as con:
            row = con.execute("SELECT story_id FROM story_members WHERE article_id = ?",
                              [aid]).fetchone()
        assert row is not None, f"{aid} is in no story"
        return str(row[0])

    def original_of(self, aid: str) -> str:
        with reader(self.db) as con:
            row = con.execute("SELECT original_article_id FROM stories WHERE story_id = ?",
                              [self.story_of(aid)]).fetchone()
        assert row is not None
        return str(row[0])

    def member(self, aid: str) -> tuple[str, float, str]:
        with reader(self.db) as con:
            row = con.execute("SELECT role, similarity, match_method FROM story_members "
                              "WHERE article_id = ?", [aid]).fetchone()
        assert row is not None
        return str(row[0]), float(row[1]), str(row[2])

    def text(self, aid: str) -> tuple[str, str]:
        with reader(self.db) as con:
            row = con.execute("SELECT text, raw_text FROM article_records WHERE article_id = ?",
                              [aid]).fetchone()
        assert row is not None
        return str(row[0]), str(row[1])

    def dump(self) -> list[tuple[object, ...]]:
        """Every story row and membership row, ordered: what idempotence compares."""
        with reader(self.db) as con:
            s = con.execute("SELECT * FROM stories ORDER BY story_id").fetchall()
            m = con.execute("SELECT * FROM story_members ORDER BY article_id").fetchall()
            t = con.execute("SELECT article_id, text FROM article_records ORDER BY 1").fetchall()
        return [*s, *m, *t]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = str(tmp_path / "d.duckdb")
    with writer(db) as con:
        writes.upsert_sources(con, REGISTRY)
    return Store(db)


def aggregator_copy(paragraphs: list[str], *, drop: int | None = None) -> list[str]:
    """What an aggregator makes of a story: a paragraph dropped, ads, a credit, its disclaimer."""
    body = [p for i, p in enumerate(paragraphs) if i != drop]
    body.insert(min(3, len(body)), "ADVERTISEMENT")
    return [*body, "© 2023 Nexstar Media Inc. All rights reserved.", "Reference", *DISCLAIMER]


Adder = Callable[..., str]
