"""Domain types for each pipeline step: plain dataclasses, no Prefect, requests or DuckDB."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Literal

SourceKind = Literal["original", "syndicator", "aggregator", "unknown"]
SOURCE_KINDS: tuple[str, ...] = ("original", "syndicator", "aggregator")


@dataclass(kw_only=True, frozen=True)
class Source:
    """One entry of sources.toml: a publisher's site and where its article URLs are found."""

    name: str
    publisher: str
    kind: SourceKind
    domains: tuple[str, ...]
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    enabled: bool = True
    boilerplate: tuple[str, ...] = ()  # extra regex patterns of lines to strip
    keep_blocks: tuple[str, ...] = ()  # learned blocks never to strip (regexes or texts)
    min_delay: float = 1.0  # seconds between two requests to one host
    max_concurrency: int = 2  # parallel requests to one host
    # Query parameters this site adds for tracking, dropped from its URLs (lower case), on top
    # of the ones every URL loses (newsflow.urls.TRACKING_PARAMS).
    tracking_params: frozenset[str] = frozenset()

    def matches_host(self, host: str) -> bool:
        """True when host is one of the domains, with or without www. or a subdomain."""
        host = host.lower().rstrip(".")
        return any(host == d or host.endswith("." + d) for d in self.domains)


@dataclass(kw_only=True, frozen=True)
class FetchSettings:
    """The [fetch] table of sources.toml: how newsflow talks to servers."""

    user_agent: str = "newsflow/0.1 (+https://github.com/newsflow/newsflow; news ingestion bot)"
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0  # a whole response, so slow-drip servers cannot hold a worker
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    retries: int = 3
    backoff: float = 0.5
    allow_private_networks: bool = False
    obey_robots: bool = True


@dataclass(kw_only=True, frozen=True)
class Registry:
    """A loaded, validated sources.toml."""

    path: str
    sources: tuple[Source, ...]
    fetch: FetchSettings = field(default_factory=FetchSettings)

    def enabled(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.enabled)

    def get(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)

    def source_for_host(self, host: str) -> Source | None:
        """The source owning host; the most specific domain wins."""
        # The host and each parent domain, longest first: a dict lookup each, where scanning
        # every source's domains cost a registry of thousands of sources per page.
        labels = host.lower().rstrip(".").split(".")
        for i in range(len(labels)):
            src = self._by_domain.get(".".join(labels[i:]))
            if src is not None:
                return src
        return None

    @cached_property
    def _by_domain(self) -> dict[str, Source]:
        out: dict[str, Source] = {}
        for s in self.sources:
            for d in s.domains:
                out.setdefault(d, s)
        return out


@dataclass(kw_only=True, frozen=True)
class Candidate:
    """An article URL found by discovery, not yet fetched."""

    url: str
    source: str
    found_via: str  # the feed, sitemap or listing page URL


@dataclass(kw_only=True)
class RawPage:
    """A fetched (or WARC-recorded) HTTP response body, before extraction."""

    url: str  # normalized URL the page is stored under
    source: str
    fetched_at: datetime
    body: bytes
    status: int = 200
    content_type: str = ""
    final_url: str = ""  # after redirects
    etag: str | None = None
    last_modified: str | None = None
    # Where a WARC-imported body can be read back: the WARC file and the record's byte offset.
    warc_file: str | None = None
    warc_offset: int | None = None


@dataclass(kw_only=True)
class Failure:
    """Why a URL produced no article: recorded, never dropped silently."""

    url: str
    source: str
    stage: Literal["discover", "fetch", "extract", "store"]
    reason: str  # a newsflow.reasons.Reason, or an http_NNN label (Reason.http)
    detail: str = ""
    status: int | None = None
    transient: bool = False  # a later run may succeed
    attempts: int = 1


@dataclass(kw_only=True)
class Article:
    """What trafilatura extracted from one page, plus where it came from."""

    article_id: str
    url: str
    source: str
    fetched_at: datetime
    text: str
    canonical_url: str | None = None
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    date_trusted: bool = True  # False when the date came from a (c) line or lies in the future
    sitename: str | None = None
    language: str | None = None
    links: tuple[str, ...] = ()  # absolute hrefs found in the article body
    raw_text: str = ""  # text before boilerplate stripping
    attribution_url: str | None = None  # the article a "Reference:"/"Source:" link credits
    credited_publisher: str | None = None  # publisher named by a foreign copyright line

    @property
    def word_count(self) -> int:
        return len(self.text.split())


@dataclass(kw_only=True)
class SourceStats:
    """Per-source counts of one run, shown in the run's table artifact."""

    source: str
    discovered: int = 0
    fetched: int = 0
    not_modified: int = 0
    new_articles: int = 0
    failed: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)

    def add_failure(self, reason: str) -> None:
        self.failed += 1
        self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1
