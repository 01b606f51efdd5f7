"""HTTP fetching with one requests Session: timeouts, retries for transient errors, politeness.

Every hop is checked by the SSRF guard (tasks/netguard.py) and robots.txt (tasks/robots.py);
redirects are followed here, not by requests, so each hop is checked. Bodies are streamed with
a deadline and a byte cap that counts *decoded* bytes (we decode gzip/deflate ourselves with
zlib's max_length), so slow-drip servers, huge bodies and gzip bombs cost bounded time and
memory. Nothing raises out of fetch()/fetch_many(): each problem becomes a Failure.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from prefect import task
from prefect.cache_policies import NO_CACHE
from requests.adapters import HTTPAdapter

from newsflow.types import Failure, FetchSettings, RawPage, Source
from newsflow.urls import normalize_url
from tasks.netguard import check_url, private_policy_from_env
from tasks.robots import MAX_ROBOTS_BYTES, RobotsCache, RobotsDownload

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
RETRY_AFTER_CAP = 30.0  # a longer Retry-After ends the attempt (transient) instead of sleeping
BACKOFF_CAP = 30.0
MAX_CRAWL_DELAY = 60.0  # a robots Crawl-delay above this is clamped, so one host cannot stall a run
DEFAULT_WORKERS = 8
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.5"
# Only encodings we decode ourselves with a cap (no br/zstd: no bounded decoder here).
ACCEPT_ENCODING = "gzip, deflate"
GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/x-gunzip"})
SNIFF_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", "unknown/unknown"})
_DEFAULT_SOURCE = Source(name="", publisher="", kind="unknown", domains=())


@dataclass(kw_only=True)
class FetchResult:
    """Exactly one of: a page, a 304 (not_modified), or a recorded failure."""

    url: str
    page: RawPage | None = None
    failure: Failure | None = None
    not_modified: bool = False
    attempts: int = 1  # HTTP attempts made (retries + 1), also on success


class _Fail(Exception):
    """One attempt's failure, carrying the Failure fields and whether to retry now."""

    def __init__(self, reason: str, detail: str = "", *, status: int | None = None,
                 transient: bool = False, retry: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.status = reason, detail, status
        self.transient, self.retry, self.retry_after = transient, retry, retry_after


@dataclass(kw_only=True)
class _Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    final_url: str
    content_type: str


# -- helpers --------------------------------------------------------------------------------

def _mime(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def acceptable_type(content_type: str) -> bool:
    """HTML, XML (feeds, sitemaps), text, JSON, gzip (sitemap.xml.gz) or unknown: worth reading."""
    mime = _mime(content_type)
    return (not mime or mime.startswith("text/") or "html" in mime or "xml" in mime
            or "json" in mime or mime in GZIP_TYPES or mime in SNIFF_TYPES)


def looks_like_markup(body: bytes) -> bool:
    """A body that starts (after a BOM and whitespace) with '<'."""
    head = body[:1024].lstrip(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<")


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now (delta-seconds or HTTP-date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        nxt = cur.__cause__ or cur.__context__
        if nxt is None and cur.args and isinstance(cur.args[-1], BaseException):
            nxt = cur.args[-1]  # urllib3 wraps the cause in args, e.g. ProtocolError(msg, err)
        cur = nxt


def classify_exception(exc: BaseException) -> _Fail:
    """Map a requests/urllib3/socket exception to a failure reason."""
    detail = str(exc)[:300]
    chain = list(_chain(exc))
    # urllib3's NewConnectionError (refused, DNS) subclasses ConnectTimeoutError: test it first.
    if any(isinstance(e, urllib3.exceptions.NewConnectionError | ConnectionRefusedError)
           for e in chain):
        return _Fail("connect_error", detail, transient=True, retry=True)
    if any(isinstance(e, requests.exceptions.ConnectTimeout
                      | urllib3.exceptions.ConnectTimeoutError) for e in chain):
        return _Fail("timeout", "connect timeout: " + detail, transient=True, retry=True)
    if any(isinstance(e, requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError
                      | TimeoutError) for e in chain):
        return _Fail("read_timeout", detail, transient=True, retry=True)
    if any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        return _Fail("tls_error", detail)
    if any(isinstance(e, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                      | requests.exceptions.InvalidSchema | urllib3.exceptions.LocationParseError)
           for e in chain):
        return _Fail("bad_url", detail)
    if any(isinstance(e, ConnectionResetError | ConnectionAbortedError | BrokenPipeError
                      | http.client.RemoteDisconnected | http.client.IncompleteRead
                      | urllib3.exceptions.ProtocolError) for e in chain):
        return _Fail("connection_reset", detail, transient=True, retry=True)
    if any(isinstance(e, requests.exceptions.ConnectionError | ConnectionRefusedError
                      | urllib3.exceptions.NewConnectionError) for e in chain):
        return _Fail("connect_error", detail, transient=True, retry=True)
    if any(isinstance(e, OSError) for e in chain):
        return _Fail("network_error", detail, transient=True, retry=True)
    return _Fail("fetch_error", f"{type(exc).__name__}: {detail}")


class BoundedDecoder:
    """Content-Encoding decoder whose output never exceeds the limit the caller passes."""

    def __init__(self, encoding: str) -> None:
        enc = encoding.strip().lower()
        if enc in ("", "identity"):
            self.kind = "identity"
        elif enc in ("gzip", "x-gzip"):
            self.kind = "gzip"
        elif enc == "deflate":
            self.kind = "deflate"
        else:
            raise _Fail("decode_error", f"unsupported Content-Encoding {encoding!r}")
        self._d = self._new()
        self._started = False
        self._done = False

    def _new(self) -> zlib._Decompress | None:
        if self.kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self.kind == "deflate":
            return zlib.decompressobj(zlib.MAX_WBITS)
        return None

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode data; returns at most `limit` bytes (a caller seeing limit bytes stops)."""
        d = self._d
        if d is None:
            return data[:limit]
        out: list[bytes] = []
        n = 0
        buf = data
        while buf and not self._done and n < limit:
            try:
                piece = d.decompress(buf, limit - n)  # limit - n >= 1: 0 would mean unbounded
            except zlib.error as exc:
                if self.kind == "deflate" and not self._started:
                    # Some servers send raw deflate without the zlib header.
                    d = self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._started = True
                    continue
                raise _Fail("decode_error", f"{self.kind}: {exc}") from exc
            self._started = True
            out.append(piece)
            n += len(piece)
            buf = d.unconsumed_tail
            if d.eof:
                rest = d.unused_data
                # A further gzip member continues the body; anything else is trailing junk.
                if self.kind == "gzip" and rest.startswith(b"\x1f\x8b"):
                    d = self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    buf = rest
                else:
                    self._done = True
        return b"".join(out)

    def flush(self) -> bytes:
        """What the decoder still holds at the end of the body (a truncated stream is kept)."""
        if self._d is None or self._done or self._d.unconsumed_tail:
            return b""  # an unconsumed tail means feed() stopped at the cap: never inflate it
        try:
            return self._d.flush()
        except zlib.error:
            return b""


@dataclass
class _HostGate:
    """Politeness state of one host: a concurrency limit and the earliest next request time."""

    sem: threading.BoundedSemaphore
    lock: threading.Lock
    next_at: float = 0.0


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
        self._gates: dict[str, _HostGate] = {}
        self._gates_lock = threading.Lock()
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
                except _Fail as fail:
                    if not fail.retry or attempts > self.settings.retries:
                        return self._failed(url, source, fail, attempts)
                    self._sleep_before_retry(attempts, fail)
        except Exception as exc:  # never raise out of fetch: record it instead
            log.exception("unexpected error fetching %s", url)
            return self._failed(url, source, _Fail("internal_error", repr(exc)[:300]),
                                max(1, attempts))

    def fetch_many(self, urls: list[tuple[str, str]]) -> list[FetchResult]:
        """Fetch (url, source) pairs, in parallel across hosts, polite within one host."""
        if not urls:
            return []
        # One lane per allowed concurrent request to a host; a lane works sequentially, so a
        # busy host never occupies more workers than its max_concurrency.
        by_host: dict[str, list[int]] = {}
        for i, (url, _src) in enumerate(urls):
            by_host.setdefault(_host_key(url), []).append(i)
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
                raise _Fail(f"http_{status}", f"Retry-After {wait:.0f}s exceeds the cap",
                            status=status, transient=True)
            if wait is not None:
                self._defer_host(resp.final_url, wait)  # other lanes on this host wait too
            raise _Fail(f"http_{status}", "", status=status, transient=True, retry=True,
                        retry_after=wait)
        if status >= 500 or status == 408:
            raise _Fail(f"http_{status}", "", status=status, transient=True, retry=True)
        raise _Fail(f"http_{status}", "", status=status)

    def _follow(self, url: str, source: str, headers: dict[str, str], *, max_bytes: int,
                for_robots: bool) -> _Response:
        current = url
        seen = {_norm(url)}
        for hop in range(self.settings.max_redirects + 1):
            reason = check_url(current, self.allow_private, self.allowed_networks)
            if reason is not None:
                raise _Fail(reason, current if hop == 0 else f"redirect hop {hop}: {current}")
            if (not for_robots and self.settings.obey_robots
                    and not self.robots.allowed(current, source)):
                raise _Fail("robots_disallowed", current)
            location, resp = self._hop(current, source, headers, max_bytes=max_bytes,
                                       for_robots=for_robots)
            if location is None:
                return resp
            try:
                nxt = urljoin(current, location)
            except ValueError:
                raise _Fail("bad_url", f"redirect to {location!r}", status=resp.status) from None
            if _norm(nxt) in seen:
                raise _Fail("redirect_loop", f"{current} -> {nxt}", status=resp.status)
            if hop == self.settings.max_redirects:
                break
            seen.add(_norm(nxt))
            current = nxt
        raise _Fail("too_many_redirects", f"more than {self.settings.max_redirects}: {current}")

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
                    raise _Fail("not_html", f"Content-Type {ctype!r}", status=r.status_code)
                done.body = self._read_body(r, rh, deadline, max_bytes, truncate=for_robots)
                return None, done
            finally:
                r.close()

    def _read_body(self, r: requests.Response, rh: dict[str, str], deadline: float,
                   cap: int, *, truncate: bool) -> bytes:
        """Stream the body, decoding it ourselves, within the deadline and the byte cap."""
        decoder = BoundedDecoder(rh.get("content-encoding", ""))
        length = rh.get("content-length", "")
        if (decoder.kind == "identity" and not truncate and length.isdigit()
                and int(length) > cap):
            raise _Fail("too_large", f"Content-Length {length} > {cap}", status=r.status_code)
        # sitemap.xml.gz is served as application/(x-)gzip: the file itself is compressed, and
        # is unpacked here so that the cap counts its decoded size too.
        gz_file = _mime(rh.get("content-type", "")) in GZIP_TYPES
        inner: BoundedDecoder | None = None
        out = bytearray()
        while True:
            if time.monotonic() > deadline:
                raise _Fail("deadline_exceeded",
                            f"body not complete after {self.settings.total_timeout}s "
                            f"({len(out)} bytes)", status=r.status_code, transient=True)
            try:
                # read1 returns as soon as some bytes arrive, so the deadline is checked
                # between socket reads (each bounded by the read timeout).
                chunk = r.raw.read1(CHUNK, decode_content=False)
            except _Fail:
                raise
            except Exception as exc:
                raise classify_exception(exc) from exc
            limit = cap - len(out) + 1
            data = decoder.feed(chunk, limit) if chunk else decoder.flush()
            if gz_file:
                if inner is None and data:
                    inner = BoundedDecoder("gzip" if data.startswith(b"\x1f\x8b") else "")
                if inner is not None:
                    data = inner.feed(data, limit) + (b"" if chunk else inner.flush())
            out += data
            if len(out) > cap:
                if truncate:
                    return bytes(out[:cap])
                raise _Fail("too_large", f"body exceeds {cap} bytes", status=r.status_code)
            if not chunk:
                return bytes(out)

    # -- politeness -------------------------------------------------------------------------
    def _source(self, name: str) -> Source:
        return self.sources.get(name, _DEFAULT_SOURCE)

    def _gate(self, host: str, concurrency: int) -> _HostGate:
        with self._gates_lock:
            gate = self._gates.get(host)
            if gate is None:
                gate = _HostGate(threading.BoundedSemaphore(max(1, concurrency)), threading.Lock())
                self._gates[host] = gate
            return gate

    def _delay_for(self, url: str, source: Source, for_robots: bool) -> float:
        delay = source.min_delay
        if self.settings.obey_robots and not for_robots:
            crawl = self.robots.crawl_delay(url, source.name)
            if crawl is not None:
                delay = max(delay, min(crawl, MAX_CRAWL_DELAY))
        return max(0.0, delay)

    @contextmanager
    def _polite(self, url: str, source_name: str, *, for_robots: bool = False) -> Iterator[None]:
        """Hold one of the host's concurrency slots, starting no sooner than its next slot."""
        source = self._source(source_name)
        delay = self._delay_for(url, source, for_robots)
        gate = self._gate(_host_key(url), source.max_concurrency)
        with gate.sem:
            with gate.lock:
                now = time.monotonic()
                start = max(now, gate.next_at)
                gate.next_at = start + delay
            if start > now:
                time.sleep(start - now)
            yield

    def _defer_host(self, url: str, seconds: float) -> None:
        gate = self._gate(_host_key(url), 1)
        with gate.lock:
            gate.next_at = max(gate.next_at, time.monotonic() + seconds)

    def _sleep_before_retry(self, attempts: int, fail: _Fail) -> None:
        # Exponential backoff with jitter so many workers do not retry in lock-step; a
        # Retry-After was already put on the host gate, which the next attempt waits for.
        base = min(BACKOFF_CAP, self.settings.backoff * 2 ** (attempts - 1))
        time.sleep(base * self._rng.uniform(0.5, 1.5))

    # -- robots -----------------------------------------------------------------------------
    def _download_robots(self, robots_url: str, source: str) -> RobotsDownload:
        try:
            resp = self._follow(robots_url, source, {}, max_bytes=MAX_ROBOTS_BYTES,
                                for_robots=True)
        except _Fail as fail:
            return RobotsDownload(status=None, error=fail.reason)
        except Exception as exc:  # robots problems must never break a page fetch
            log.warning("robots.txt %s: %r", robots_url, exc)
            return RobotsDownload(status=None, error="internal_error")
        return RobotsDownload(status=resp.status, body=resp.body)

    # -- results ----------------------------------------------------------------------------
    def _result(self, url: str, source: str, resp: _Response, attempts: int) -> FetchResult:
        if resp.status == 304:
            return FetchResult(url=url, not_modified=True, attempts=attempts)
        if not resp.body.strip():
            raise _Fail("empty_body", f"HTTP {resp.status} with no content",
                        status=resp.status, transient=True)
        mime = _mime(resp.content_type)
        if resp.body.startswith(b"%PDF-") or (mime in SNIFF_TYPES
                                              and not looks_like_markup(resp.body)):
            raise _Fail("not_html", f"body is not markup (Content-Type {resp.content_type!r})",
                        status=resp.status)
        ctype = resp.content_type
        if mime in GZIP_TYPES:  # the body was gunzipped: describe what it is now
            ctype = "application/xml" if looks_like_markup(resp.body) else "text/plain"
        page = RawPage(url=_norm(url), source=source, fetched_at=datetime.now(UTC),
                       body=resp.body, status=resp.status, content_type=ctype,
                       final_url=resp.final_url, etag=resp.headers.get("etag"),
                       last_modified=resp.headers.get("last-modified"))
        return FetchResult(url=url, page=page, attempts=attempts)

    def _failed(self, url: str, source: str, fail: _Fail, attempts: int) -> FetchResult:
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


def _host_key(url: str) -> str:
    """Politeness is per host name (all ports of one machine count as one host)."""
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


# -- Prefect --------------------------------------------------------------------------------

_SHARED: Fetcher | None = None


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
