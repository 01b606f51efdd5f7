"""Discovery: article URLs from a source's feeds, sitemaps and listing pages, through a Fetcher.

The bodies are parsed by tasks/discover_feeds.py, tasks/discover_sitemaps.py and
tasks/discover_listing.py (pure functions over untrusted input); this module fetches them,
follows sitemap indexes, and turns links into candidates.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar
from urllib.parse import urlsplit

from prefect import task
from prefect.cache_policies import NO_CACHE

from newsflow.reasons import Reason
from newsflow.types import Candidate, Failure, FetchSettings, Registry, Source
from newsflow.urls import normalize_url
from tasks.discover_feeds import parse_feed
from tasks.discover_input import DiscoveryParseError
from tasks.discover_listing import parse_listing
from tasks.discover_sitemaps import parse_sitemap
from tasks.fetch import Fetcher, shared_fetcher

log = logging.getLogger(__name__)

MAX_SITEMAP_DEPTH = 3  # index -> index -> index -> urlset hops followed below a configured sitemap
MAX_SITEMAP_CHILDREN = 50  # child sitemaps fetched per source per run

_T = TypeVar("_T")


@dataclass(kw_only=True)
class DiscoveryResult:
    """What discovering one source produced; validators are to be stored for the next run."""

    source: str
    candidates: list[Candidate] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    not_modified: list[str] = field(default_factory=list)  # feed/sitemap/page URLs unchanged
    # url -> (etag, last_modified, body_sha256) of every feed, sitemap and page seen this run
    validators: dict[str, tuple[str | None, str | None, str | None]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Candidates


def filter_candidates(urls: Iterable[str], source: Source, registry: Registry | None = None, *,
                      known: Callable[[str], bool] = lambda _url: False, found_via: str = "",
                      seen: set[str] | None = None) -> list[Candidate]:
    """Normalized, same-source, not-yet-stored URLs as Candidates, deduplicated, in order.

    `seen` (mutated) lets a caller dedupe across several batches of one discovery run.
    With a registry, a URL whose host a more specific source owns is left to that source.
    """
    seen = set() if seen is None else seen
    out: list[Candidate] = []
    for raw in urls:
        try:
            url = normalize_url(raw, drop=source.tracking_params)
        except ValueError:  # e.g. a port out of range in a hostile feed
            continue
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not source.matches_host(host):
            continue
        if registry is not None:
            owner = registry.source_for_host(host)
            if owner is not None and owner.name != source.name:
                continue
        if url in seen:
            continue
        seen.add(url)
        if known(url):
            continue
        out.append(Candidate(url=url, source=source.name, found_via=found_via))
    return out


# ---------------------------------------------------------------------------------------------
# Orchestration through a Fetcher


def discover_source(source: Source, fetcher: Fetcher, known: Callable[[str], bool],
                    validators: Mapping[str, Sequence[str | None]] | None = None, *,
                    registry: Registry | None = None) -> DiscoveryResult:
    """Fetch and parse every feed, sitemap and listing page of a source; never raises for one."""
    run = _Run(source=source, fetcher=fetcher, known=known, old=validators or {},
               registry=registry, result=DiscoveryResult(source=source.name))
    for url in source.feeds:
        run.visit(url, lambda body, u: parse_feed(body, u))
    run.sitemaps(source.sitemaps)
    for url in source.pages:
        run.visit(url, lambda body, u: parse_listing(body, u, source))
    return run.result


_Validators = tuple[str | None, str | None, str | None]  # etag, last_modified, body sha256


@dataclass(kw_only=True)
class _Doc:
    """A fetched feed, sitemap or page body; `unchanged` when its sha256 matches the stored one."""

    body: bytes
    final_url: str
    validators: _Validators
    unchanged: bool


@dataclass(kw_only=True)
class _Run:
    """State of one discover_source call: the result being built and what was seen."""

    source: Source
    fetcher: Fetcher
    known: Callable[[str], bool]
    old: Mapping[str, Sequence[str | None]]
    registry: Registry | None
    result: DiscoveryResult
    seen_urls: set[str] = field(default_factory=set)

    def visit(self, url: str, parse: Callable[[bytes, str], list[str]]) -> None:
        """Fetch one feed or listing page and add its new candidates."""
        doc = self.fetch(url)
        if doc is None:
            return
        if doc.unchanged:
            self.unchanged(url, doc.validators)
            return
        urls = self.parse_or_record(url, parse, doc.body, doc.final_url)
        if urls is not None:
            self.add(url, urls, doc.validators)

    def parse_or_record(self, url: str, parse: Callable[[bytes, str], _T], body: bytes,
                        base: str) -> _T | None:
        """parse(body, base), or None with the parse failure of url recorded."""
        try:
            return parse(body, base)
        except DiscoveryParseError as exc:
            self.parse_failed(url, exc)
        except Exception as exc:  # a parser bug on hostile input must not end the whole run
            log.exception("parsing %s", url)
            self.parse_failed(url, DiscoveryParseError(Reason.PARSE_ERROR, repr(exc)))
        return None

    def sitemaps(self, roots: Sequence[str]) -> None:
        """Breadth-first over sitemap indexes: depth and child count capped, loops skipped."""
        queue = deque((url, 0) for url in roots)
        visited = {normalize_url(url) for url in roots}
        children = 0
        while queue:
            url, depth = queue.popleft()
            doc = self.fetch(url)
            if doc is None:
                continue
            parsed = self.parse_or_record(url, parse_sitemap, doc.body, doc.final_url)
            if parsed is None:
                continue
            if parsed.children:
                # An index is kept without HTTP validators, so it is always downloaded again:
                # its children can change while its own bytes (and ETag) stay the same.
                validators: _Validators = (None, None, doc.validators[2])
                if doc.unchanged:
                    self.unchanged(url, validators)
                else:
                    self.add(url, parsed.urls, validators)
            elif doc.unchanged:
                self.unchanged(url, doc.validators)
                continue
            else:
                self.add(url, parsed.urls, doc.validators)
            if depth >= MAX_SITEMAP_DEPTH:
                continue
            for child in parsed.children:
                key = normalize_url(child)
                if key in visited or children >= MAX_SITEMAP_CHILDREN:
                    continue
                visited.add(key)
                children += 1
                queue.append((child, depth + 1))

    def fetch(self, url: str) -> _Doc | None:
        """The document at url; None when it answered 304 or failed (both recorded)."""
        old = (*self.old.get(url, ()), None, None, None)
        etag, last_modified, old_sha = old[0], old[1], old[2]
        res = self.fetcher.fetch(url, source=self.source.name, etag=etag,
                                 last_modified=last_modified)
        if res.not_modified:
            self.unchanged(url, (etag, last_modified, old_sha))
            return None
        if res.page is None:
            # Labelled as a discovery failure so nothing retries a feed URL as an article.
            failure = res.failure or Failure(url=url, source=self.source.name, stage="discover",
                                             reason=Reason.NO_RESPONSE)
            self.result.failures.append(replace(failure, stage="discover"))
            return None
        page = res.page
        sha = hashlib.sha256(page.body).hexdigest()
        # Same bytes as last run: servers without (or with broken) ETag/Last-Modified.
        return _Doc(body=page.body, final_url=page.final_url or page.url or url,
                    validators=(page.etag, page.last_modified, sha), unchanged=sha == old_sha)

    def unchanged(self, url: str, validators: _Validators) -> None:
        self.result.not_modified.append(url)
        self.result.validators[url] = validators

    def add(self, url: str, found: list[str], validators: _Validators) -> None:
        # Validators are kept only after a successful parse, so a broken body is retried.
        self.result.validators[url] = validators
        self.result.candidates.extend(filter_candidates(
            found, self.source, self.registry, known=self.known, found_via=url,
            seen=self.seen_urls))

    def parse_failed(self, url: str, exc: DiscoveryParseError) -> None:
        self.result.failures.append(Failure(url=url, source=self.source.name, stage="discover",
                                            reason=exc.reason, detail=exc.detail))


# ---------------------------------------------------------------------------------------------
# Prefect task


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger
    try:
        return get_run_logger()
    except MissingContextError:  # called as discover_batch.fn(...) outside a run
        return log


# NO_CACHE: discovery must hit the network every run.
@task(name="discover-sources", cache_policy=NO_CACHE)
def discover_batch(sources: tuple[Source, ...], settings: FetchSettings,
                   known_urls: frozenset[str] = frozenset(),
                   validators: Mapping[str, Sequence[str | None]] | None = None
                   ) -> list[DiscoveryResult]:
    """Discover each source through one Fetcher; known_urls (normalized) are left out.

    The ingest flow passes none: it drops stored URLs after discovery by looking up only the
    listed ones (flows.ingest.drop_known), instead of loading the whole store's URLs.
    """
    logger = _logger()
    # Inside fetch_session() (the ingest flow) share the run's Fetcher: robots.txt and per-host
    # delays then carry over from discovery to fetching.
    shared = shared_fetcher()
    fetcher = shared or Fetcher(settings, sources)
    results: list[DiscoveryResult] = []
    try:
        for source in sources:
            result = discover_source(source, fetcher, known_urls.__contains__, validators)
            logger.info("discover %s: %d candidate URLs, %d unchanged, %d failures",
                        source.name, len(result.candidates), len(result.not_modified),
                        len(result.failures))
            results.append(result)
    finally:
        if shared is None:
            fetcher.close()
    return results
