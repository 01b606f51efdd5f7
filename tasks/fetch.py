"""HTTP fetching with one requests Session: timeouts, retries for transient errors, politeness.

Every hop is checked by the SSRF guard (tasks/netguard.py) and robots.txt (tasks/robots.py);
redirects are followed here, not by requests, so each hop is checked. Bodies are read by
tasks/fetch_body.py within a deadline and a decoded-size cap; per-host delays and concurrency
are kept by tasks/fetch_polite.py. Nothing raises out of fetch()/fetch_many(): each problem
becomes a Failure.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import urljoin

import requests
from prefect import task
from prefect.cache_policies import NO_CACHE
from requests.adapters import HTTPAdapter

from newsflow.errors import FetchError
from newsflow.reasons import Reason
from newsflow.types import Failure, FetchSettings, RawPage, Source
from newsflow.urls import normalize_url
from tasks.fetch_body import (
    GZIP_TYPES,
    SNIFF_TYPES,
    acceptable_type,
    classify_exception,
    looks_like_markup,
    mime,
    parse_retry_after,
    read_body,
)
from tasks.fetch_polite import HostGates, backoff_delay, host_key, request_delay
from tasks.netguard import check_url, private_policy_from_env
from tasks.robots import MAX_ROBOTS_BYTES, RobotsCache, RobotsDownload

log = logging.getLogger(__name__)

RETRY_AFTER_CAP = 30.0  # a longer Retry-After ends the attempt (transient) instead of sleeping
DEFAULT_WORKERS = 8
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.5"
# Only encodings tasks/fetch_body.py decodes with a cap (no br/zstd: no bounded decoder here).
ACCEPT_ENCODING = "gzip, deflate"
_DEFAULT_SOURCE = Source(name="", publisher="", kind="unknown", domains=())


@dataclass(kw_only=True)
class FetchResult:
    """Exactly one of: a page, a 304 (not_modified), or a recorded failure."""

    url: str
    page: RawPage | None = None
    failure: Failure | None = None
    not_modified: bool = False
    attempts: int = 1  # HTTP attempts made (retries + 1), also on success


@dataclass(kw_only=True)
class _Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    final_url: str
    content_type: str


# -- the fetcher ----------------------------------------------------------------------------

class Fetcher:
    """One requests Session shared by a run; polite per host; never raises for a bad URL."""

    def __init__(self, settings: FetchSettings, sources: tuple[Source, ...] = (), *,
                 max_workers: int = DEFAULT_WORKERS) -> None:
        self.settings = settings
        self.sources = {s.name: s for s in sources}
        self.max_workers = max(1, max_workers)
        self.allow_private, self.allowed_networks = private_policy_from_env(
            settings.allow_private_networks)
        self.session = requests.Session()
        # Retries are ours (with backoff and per-hop checks), so urllib3 must not retry.
        adapter = HTTPAdapter(pool_connections=32, pool_maxsize=self.max_workers, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": settings.user_agent, "Accept": ACCEPT,
                                     "Accept-Encoding": ACCEPT_ENCODING})
        self.robots = RobotsCache(settings.user_agent, self._download_robots)
        self.gates = HostGates()
        self._rng = random.Random()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # -- public -----------------------------------------------------------------------------
    def fetch(self, url: str, *, source: str, etag: str | None = None,
              last_modified: str | None = None) -> FetchResult:
        """Fetch one URL with retries; a page, a 304 or a Failure, never an exception."""
        attempts = 0
        try:
            headers: dict[str, str] = {}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            while True:
                attempts += 1
                try:
                    resp = self._attempt(url, source, headers)
                    return self._result(url, source, resp, attempts)
                except FetchError as fail:
                    if not fail.retry_now or attempts > self.settings.retries:
                        return self._failed(url, source, fail, attempts)
                    # A Retry-After was put on the host gate, which the next attempt waits for.
                    time.sleep(backoff_delay(attempts, self.settings.backoff, self._rng))
        except Exception as exc:  # never raise out of fetch: record it instead
            log.exception("unexpected error fetching %s", url)
            return self._failed(url, source, FetchError(Reason.INTERNAL_ERROR, repr(exc)[:300]),
                                max(1, attempts))

    def fetch_many(self, urls: list[tuple[str, str]]) -> list[FetchResult]:
        """Fetch (url, source) pairs, in parallel across hosts, polite within one host."""
        if not urls:
            return []
        # One lane per allowed concurrent request to a host; a lane works sequentially, so a
        # busy host never occupies more workers than its max_concurrency.
        by_host: dict[str, list[int]] = {}
        for i, (url, _src) in enumerate(urls):
            by_host.setdefault(host_key(url), []).append(i)
        lanes: list[list[int]] = []
        for idxs in by_host.values():
            n = max(1, min(self._source(urls[idxs[0]][1]).max_concurrency, len(idxs)))
            lanes.extend(idxs[k::n] for k in range(n))
        # Longest lanes first: the slowest host starts early (when lanes outnumber workers).
        lanes.sort(key=len, reverse=True)
        results: list[FetchResult | None] = [None] * len(urls)

        def run(lane: list[int]) -> None:
            for i in lane:
                url, src = urls[i]
                results[i] = self.fetch(url, source=src)

        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(lanes)),
                                thread_name_prefix="fetch") as pool:
            for fut in [pool.submit(run, lane) for lane in lanes]:
                fut.result()
        return [r for r in results if r is not None]

    # -- one attempt: redirects, guard, robots, politeness ----------------------------------
    def _attempt(self, url: str, source: str, headers: dict[str, str]) -> _Response:
        resp = self._follow(url, source, headers, max_bytes=self.settings.max_bytes,
                            for_robots=False)
        status = resp.status
        if 200 <= status < 300 or status == 304:
            return resp
        if status == 429 or (status == 503 and "retry-after" in resp.headers):
            wait = parse_retry_after(resp.headers.get("retry-after"))
            if wait is not None and wait > RETRY_AFTER_CAP:
                raise FetchError(Reason.http(status), f"Retry-After {wait:.0f}s exceeds the cap",
                                 status=status, retry_now=False)
            if wait is not None:
                self.gates.defer(resp.final_url, wait)  # other lanes on this host wait too
        # Retried at once when a later answer may differ: 5xx, 408, 429 (http_transient).
        raise FetchError(Reason.http(status), status=status)

    def _follow(self, url: str, source: str, headers: dict[str, str], *, max_bytes: int,
                for_robots: bool) -> _Response:
        current = url
        seen = {_norm(url)}
        for hop in range(self.settings.max_redirects + 1):
            reason = check_url(current, self.allow_private, self.allowed_networks)
            if reason is not None:
                raise FetchError(reason, current if hop == 0 else f"redirect hop {hop}: {current}")
            if (not for_robots and self.settings.obey_robots
                    and not self.robots.allowed(current, source)):
                raise FetchError(Reason.ROBOTS_DISALLOWED, current)
            location, resp = self._hop(current, source, headers, max_bytes=max_bytes,
                                       for_robots=for_robots)
            if location is None:
                return resp
            try:
                nxt = urljoin(current, location)
            except ValueError:
                raise FetchError(Reason.BAD_URL, f"redirect to {location!r}",
                                 status=resp.status) from None
            if _norm(nxt) in seen:
                raise FetchError(Reason.REDIRECT_LOOP, f"{current} -> {nxt}", status=resp.status)
            if hop == self.settings.max_redirects:
                break
            seen.add(_norm(nxt))
            current = nxt
        raise FetchError(Reason.TOO_MANY_REDIRECTS,
                         f"more than {self.settings.max_redirects}: {current}")

    def _hop(self, url: str, source: str, headers: dict[str, str], *, max_bytes: int,
             for_robots: bool) -> tuple[str | None, _Response]:
        """One request: (redirect Location, response) or (None, response with its body)."""
        s = self.settings
        with self._polite(url, source, for_robots=for_robots):
            deadline = time.monotonic() + s.total_timeout
            try:
                r = self.session.get(url, headers=headers, stream=True, allow_redirects=False,
                                     timeout=(s.connect_timeout, s.read_timeout))
            except Exception as exc:
                raise classify_exception(exc) from exc
            try:
                rh = {k.lower(): v for k, v in r.headers.items()}
                ctype = rh.get("content-type", "")
                done = _Response(status=r.status_code, headers=rh, body=b"", final_url=url,
                                 content_type=ctype)
                if r.status_code in REDIRECT_STATUSES and rh.get("location"):
                    return rh["location"].strip(), done
                if not 200 <= r.status_code < 300:
                    return None, done  # error bodies are not needed
                if not for_robots and not acceptable_type(ctype):
                    raise FetchError(Reason.NOT_HTML, f"Content-Type {ctype!r}",
                                     status=r.status_code)
                done.body = read_body(r, rh, deadline, max_bytes, truncate=for_robots,
                                      total_timeout=s.total_timeout)
                return None, done
            finally:
                r.close()

    # -- politeness -------------------------------------------------------------------------
    def _source(self, name: str) -> Source:
        return self.sources.get(name, _DEFAULT_SOURCE)

    @contextmanager
    def _polite(self, url: str, source_name: str, *, for_robots: bool = False) -> Iterator[None]:
        """Wait for the host's next slot (source delay, robots Crawl-delay) and hold it."""
        source = self._source(source_name)
        crawl = None
        if self.settings.obey_robots and not for_robots:
            crawl = self.robots.crawl_delay(url, source.name)
        with self.gates.slot(url, source.max_concurrency, request_delay(source.min_delay, crawl)):
            yield

    # -- robots -----------------------------------------------------------------------------
    def _download_robots(self, robots_url: str, source: str) -> RobotsDownload:
        try:
            resp = self._follow(robots_url, source, {}, max_bytes=MAX_ROBOTS_BYTES,
                                for_robots=True)
        except FetchError as fail:
            return RobotsDownload(status=None, error=fail.reason)
        except Exception as exc:  # robots problems must never break a page fetch
            log.warning("robots.txt %s: %r", robots_url, exc)
            return RobotsDownload(status=None, error=Reason.INTERNAL_ERROR)
        return RobotsDownload(status=resp.status, body=resp.body)

    # -- results ----------------------------------------------------------------------------
    def _result(self, url: str, source: str, resp: _Response, attempts: int) -> FetchResult:
        if resp.status == 304:
            return FetchResult(url=url, not_modified=True, attempts=attempts)
        if not resp.body.strip():
            # Transient (a later run refetches it), but not retried at once.
            raise FetchError(Reason.EMPTY_BODY, f"HTTP {resp.status} with no content",
                             status=resp.status, retry_now=False)
        kind = mime(resp.content_type)
        if resp.body.startswith(b"%PDF-") or (kind in SNIFF_TYPES
                                              and not looks_like_markup(resp.body)):
            raise FetchError(Reason.NOT_HTML,
                             f"body is not markup (Content-Type {resp.content_type!r})",
                             status=resp.status)
        ctype = resp.content_type
        if kind in GZIP_TYPES:  # the body was gunzipped: describe what it is now
            ctype = "application/xml" if looks_like_markup(resp.body) else "text/plain"
        page = RawPage(url=_norm(url), source=source, fetched_at=datetime.now(UTC),
                       body=resp.body, status=resp.status, content_type=ctype,
                       final_url=resp.final_url, etag=resp.headers.get("etag"),
                       last_modified=resp.headers.get("last-modified"))
        return FetchResult(url=url, page=page, attempts=attempts)

    def _failed(self, url: str, source: str, fail: FetchError, attempts: int) -> FetchResult:
        failure = Failure(url=url, source=source, stage="fetch", reason=fail.reason,
                          detail=fail.detail, status=fail.status, transient=fail.transient,
                          attempts=attempts)
        log.info("fetch failed %s: %s %s", url, fail.reason, fail.detail)
        return FetchResult(url=url, failure=failure, attempts=attempts)


def _norm(url: str) -> str:
    """normalize_url, or url itself when it cannot be parsed (the guard reports that)."""
    try:
        return normalize_url(url)
    except ValueError:
        return url


# -- Prefect --------------------------------------------------------------------------------

_SHARED: Fetcher | None = None


def shared_fetcher() -> Fetcher | None:
    """The Fetcher of the fetch_session() this thread's flow run is inside, if any."""
    return _SHARED


@contextmanager
def fetch_session(settings: FetchSettings, sources: tuple[Source, ...]) -> Iterator[Fetcher]:
    """One Fetcher for a whole flow run, so per-host delays and robots.txt carry across batches."""
    global _SHARED
    fetcher = Fetcher(settings, sources)
    previous, _SHARED = _SHARED, fetcher
    try:
        yield fetcher
    finally:
        _SHARED = previous
        fetcher.close()


@task(name="fetch-batch", cache_policy=NO_CACHE)
def fetch_batch(urls: list[tuple[str, str]], settings: FetchSettings,
                sources: tuple[Source, ...]) -> list[FetchResult]:
    """Fetch a batch of (url, source) pairs (one task per batch, not per URL).

    Inside fetch_session() the run's shared Fetcher is used; alone, a Fetcher of its own.
    """
    if _SHARED is not None:
        return _SHARED.fetch_many(urls)
    with Fetcher(settings, sources) as fetcher:
        return fetcher.fetch_many(urls)
