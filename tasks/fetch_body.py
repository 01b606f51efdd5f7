"""Reading one HTTP response: content types, bounded decoding, and what a network error means.

Bodies are streamed with a deadline and a byte cap that counts *decoded* bytes (gzip/deflate are
decoded here with zlib's max_length), so slow-drip servers, huge bodies and gzip bombs cost
bounded time and memory. Each problem is raised as a FetchError with its Reason.
"""

from __future__ import annotations

import http.client
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
import urllib3.exceptions

from newsflow.errors import FetchError
from newsflow.reasons import Reason

CHUNK = 64 * 1024
GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/x-gunzip"})
SNIFF_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", "unknown/unknown"})


def mime(content_type: str) -> str:
    """The media type of a Content-Type, lower case, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def acceptable_type(content_type: str) -> bool:
    """HTML, XML (feeds, sitemaps), text, JSON, gzip (sitemap.xml.gz) or unknown: worth reading."""
    m = mime(content_type)
    return (not m or m.startswith("text/") or "html" in m or "xml" in m
            or "json" in m or m in GZIP_TYPES or m in SNIFF_TYPES)


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


def classify_exception(exc: BaseException) -> FetchError:
    """Map a requests/urllib3/socket exception to a FetchError with its reason."""
    detail = str(exc)[:300]
    chain = list(_chain(exc))
    # urllib3's NewConnectionError (refused, DNS) subclasses ConnectTimeoutError: test it first.
    if any(isinstance(e, urllib3.exceptions.NewConnectionError | ConnectionRefusedError)
           for e in chain):
        return FetchError(Reason.CONNECT_ERROR, detail)
    if any(isinstance(e, requests.exceptions.ConnectTimeout
                      | urllib3.exceptions.ConnectTimeoutError) for e in chain):
        return FetchError(Reason.TIMEOUT, "connect timeout: " + detail)
    if any(isinstance(e, requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError
                      | TimeoutError) for e in chain):
        return FetchError(Reason.READ_TIMEOUT, detail)
    if any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        return FetchError(Reason.TLS_ERROR, detail)
    if any(isinstance(e, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                      | requests.exceptions.InvalidSchema | urllib3.exceptions.LocationParseError)
           for e in chain):
        return FetchError(Reason.BAD_URL, detail)
    if any(isinstance(e, ConnectionResetError | ConnectionAbortedError | BrokenPipeError
                      | http.client.RemoteDisconnected | http.client.IncompleteRead
                      | urllib3.exceptions.ProtocolError) for e in chain):
        return FetchError(Reason.CONNECTION_RESET, detail)
    if any(isinstance(e, requests.exceptions.ConnectionError | ConnectionRefusedError
                      | urllib3.exceptions.NewConnectionError) for e in chain):
        return FetchError(Reason.CONNECT_ERROR, detail)
    if any(isinstance(e, OSError) for e in chain):
        return FetchError(Reason.NETWORK_ERROR, detail)
    return FetchError(Reason.FETCH_ERROR, f"{type(exc).__name__}: {detail}")


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
            raise FetchError(Reason.DECODE_ERROR, f"unsupported Content-Encoding {encoding!r}")
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
                raise FetchError(Reason.DECODE_ERROR, f"{self.kind}: {exc}") from exc
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


def read_body(r: requests.Response, headers: dict[str, str], deadline: float, cap: int, *,
              truncate: bool, total_timeout: float) -> bytes:
    """Stream r's body (headers lower-cased), decoding it here, within the deadline and cap.

    With truncate a body over the cap is cut at the cap (robots.txt), else it is too_large.
    """
    decoder = BoundedDecoder(headers.get("content-encoding", ""))
    length = headers.get("content-length", "")
    if decoder.kind == "identity" and not truncate and length.isdigit() and int(length) > cap:
        raise FetchError(Reason.TOO_LARGE, f"Content-Length {length} > {cap}",
                         status=r.status_code)
    # sitemap.xml.gz is served as application/(x-)gzip: the file itself is compressed, and
    # is unpacked here so that the cap counts its decoded size too.
    gz_file = mime(headers.get("content-type", "")) in GZIP_TYPES
    inner: BoundedDecoder | None = None
    out = bytearray()
    while True:
        if time.monotonic() > deadline:
            # Not retried within the run: a slow-drip server would hold the worker as long again.
            raise FetchError(Reason.DEADLINE_EXCEEDED,
                             f"body not complete after {total_timeout}s ({len(out)} bytes)",
                             status=r.status_code, retry_now=False)
        try:
            # read1 returns as soon as some bytes arrive, so the deadline is checked
            # between socket reads (each bounded by the read timeout).
            chunk = r.raw.read1(CHUNK, decode_content=False)
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
            raise FetchError(Reason.TOO_LARGE, f"body exceeds {cap} bytes", status=r.status_code)
        if not chunk:
            return bytes(out)
