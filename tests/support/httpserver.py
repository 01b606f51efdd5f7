"""A real threaded HTTP server on 127.0.0.1 for tests, with hostile "behaviours" as routes.

Usage:
    with FixtureServer() as srv:
        srv.static("/a", b"<html>...</html>", etag='"v1"')
        srv.route("/flaky", status_sequence([500, 200], body=b"<html>ok</html>"))
        requests.get(srv.url("/a"))
        assert srv.hits("/a") == 1

A behaviour is any callable taking the request handler (`Handler`) and writing a whole response;
the factories below cover the usual hostile servers. Every behaviour that waits or streams
watches `handler.stopping` so that `stop()` is fast even in the middle of a slow response.
"""

from __future__ import annotations

import contextlib
import gzip
import mimetypes
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

Behaviour = Callable[["Handler"], None]


@dataclass(kw_only=True, frozen=True)
class RecordedRequest:
    """One request as the server saw it; `at` is time.monotonic() on arrival."""

    method: str
    path: str  # with the query string
    headers: Mapping[str, str]  # lower-case names
    at: float
    client_port: int

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck handler never blocks interpreter exit
    block_on_close = False  # server_close() must not wait for handlers (slow drips)
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], fixture: FixtureServer) -> None:
        self.fixture = fixture
        super().__init__(addr, Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up mid-response is the normal case in these tests: stay quiet.
        pass


class Handler(BaseHTTPRequestHandler):
    """Dispatches every request to the fixture's route table and records it."""

    protocol_version = "HTTP/1.1"  # keep-alive, like real servers; streaming behaviours close
    timeout = 10  # an idle keep-alive connection frees its thread
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    @property
    def fixture(self) -> FixtureServer:
        return self.server.fixture

    @property
    def stopping(self) -> threading.Event:
        return self.server.fixture.stopping

    def _dispatch(self) -> None:
        self.fixture._record(self)
        behaviour = self.fixture._find(self.path)
        try:
            behaviour(self)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True  # the client gave up: nothing left to do
        except OSError:
            self.close_connection = True

    do_GET = _dispatch
    do_HEAD = _dispatch

    def request_header(self, name: str) -> str | None:
        return self.headers.get(name)

    def send_body(self, status: int, body: bytes, *, content_type: str = "text/html",
                  headers: Mapping[str, str] | None = None) -> None:
        """Send a whole response with a Content-Length."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashed proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


class FixtureServer:
    """A started-on-demand ThreadingHTTPServer on 127.0.0.1:0 with a route table."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.stopping = threading.Event()
        self._routes: dict[str, Behaviour] = {}
        self._mounts: list[tuple[str, Path]] = []
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> FixtureServer:
        self._httpd = _Server((self.host, 0), self)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"fixture-server-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, tell busy behaviours to give up, close the socket; never blocks long."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._httpd = self._thread = None

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of path on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- routes -----------------------------------------------------------------------------
    def route(self, path: str, behaviour: Behaviour | bytes) -> FixtureServer:
        """Serve path (exact; with a query string it must match exactly) with a behaviour."""
        self._routes[path] = behaviour if callable(behaviour) else static(behaviour)
        return self

    def static(self, path: str, body: bytes, content_type: str = "text/html; charset=utf-8",
               headers: Mapping[str, str] | None = None, status: int = 200,
               etag: str | None = None, last_modified: str | None = None) -> FixtureServer:
        """Serve fixed bytes, answering 304 to a matching If-None-Match / If-Modified-Since."""
        return self.route(path, static(body, content_type=content_type, headers=headers,
                                       status=status, etag=etag, last_modified=last_modified))

    def mount_directory(self, prefix: str, directory: Path | str) -> FixtureServer:
        """Serve the files below directory under prefix; `x.html.gz` is served as `x.html`."""
        self._mounts.append((prefix.rstrip("/") + "/", Path(directory)))
        return self

    def site(self, pages: Mapping[str, Path | str | bytes]) -> FixtureServer:
        """Serve several recorded pages: {path: file (.gz is decompressed) or bytes}."""
        for path, page in pages.items():
            self.route(path, page if isinstance(page, bytes) else file_response(Path(page)))
        return self

    def _find(self, raw_path: str) -> Behaviour:
        if raw_path in self._routes:
            return self._routes[raw_path]
        path = urlsplit(raw_path).path
        if path in self._routes:
            return self._routes[path]
        for prefix, directory in self._mounts:
            if path.startswith(prefix):
                found = _find_file(directory, path[len(prefix):])
                if found is not None:
                    return file_response(found)
        return status_only(404, b"not found")

    # -- request log ------------------------------------------------------------------------
    def _record(self, h: Handler) -> None:
        rec = RecordedRequest(method=h.command, path=h.path,
                              headers={k.lower(): v for k, v in h.headers.items()},
                              at=time.monotonic(), client_port=int(h.client_address[1]))
        with self._lock:
            self._requests.append(rec)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """Requests whose path (with or without the query string) equals path."""
        return [r for r in self.requests if r.path == path or urlsplit(r.path).path == path]

    def hits(self, path: str) -> int:
        """How many requests path received."""
        return len(self.requests_for(path))


def _find_file(directory: Path, rel: str) -> Path | None:
    root = directory.resolve()
    for candidate in (rel, rel + ".gz"):
        p = (root / candidate).resolve()
        # Never serve outside the mounted directory (".." in a request path).
        if p.is_file() and p.is_relative_to(root):
            return p
    return None


# -- behaviours ------------------------------------------------------------------------------

def _not_modified(h: Handler, etag: str | None, last_modified: str | None) -> bool:
    inm = h.request_header("If-None-Match")
    if inm is not None and etag is not None:
        return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
    ims = h.request_header("If-Modified-Since")
    if ims is not None and last_modified is not None:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def static(body: bytes, *, content_type: str = "text/html; charset=utf-8",
           headers: Mapping[str, str] | None = None, status: int = 200,
           etag: str | None = None, last_modified: str | None = None) -> Behaviour:
    """Fixed bytes; with etag/last_modified it sends them and answers conditional GETs with 304."""
    extra = dict(headers or {})
    if etag:
        extra["ETag"] = etag
    if last_modified:
        extra["Last-Modified"] = last_modified

    def behave(h: Handler) -> None:
        if status == 200 and _not_modified(h, etag, last_modified):
            h.send_response(304)
            for k, v in extra.items():
                h.send_header(k, v)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_body(status, body, content_type=content_type, headers=extra)

    return behave


def status_only(status: int, body: bytes = b"", *, content_type: str = "text/plain",
                headers: Mapping[str, str] | None = None) -> Behaviour:
    """A fixed status with a small body (404, 500, 204, ...)."""

    def behave(h: Handler) -> None:
        h.send_body(status, body, content_type=content_type, headers=headers)

    return behave


def sequence(behaviours: Iterable[Behaviour]) -> Behaviour:
    """The n-th request gets the n-th behaviour; the last one repeats."""
    items = list(behaviours)
    lock = threading.Lock()
    count = [0]

    def behave(h: Handler) -> None:
        with lock:
            i = min(count[0], len(items) - 1)
            count[0] += 1
        items[i](h)

    return behave


def status_sequence(statuses: Iterable[int], body: bytes = b"<html><body>ok</body></html>",
                    content_type: str = "text/html; charset=utf-8") -> Behaviour:
    """E.g. [500, 200]: errors carry a short text body, the success carries body."""
    return sequence(static(body, content_type=content_type) if s == 200
                    else status_only(s, f"error {s}".encode()) for s in statuses)


def too_many_requests(retry_after: str | None = "1") -> Behaviour:
    """429 with a Retry-After header (seconds or an HTTP date)."""
    return status_only(429, b"slow down",
                       headers={"Retry-After": retry_after} if retry_after is not None else None)


def retry_after_date(seconds: float) -> str:
    """An HTTP-date seconds from now, for Retry-After."""
    return formatdate(time.time() + seconds, usegmt=True)


def redirect(location: str, status: int = 302) -> Behaviour:
    """A redirect to location (relative or absolute, any scheme)."""
    return status_only(status, b"", headers={"Location": location})


def slow_drip(*, interval: float = 0.05, size: int = 100_000,
              content_type: str = "text/html") -> Behaviour:
    """Announce size bytes, then write one byte every interval seconds (never times out a read)."""

    def behave(h: Handler) -> None:
        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(size))
        h.end_headers()
        h.wfile.write(b"<")
        h.wfile.flush()
        for _ in range(size - 1):
            if h.stopping.wait(interval):
                return
            h.wfile.write(b"x")
            h.wfile.flush()

    return behave


def huge(size: int = 1 << 30, *, chunk: int = 64 * 1024, chunked: bool = False,
         content_type: str = "text/html") -> Behaviour:
    """Stream size bytes of HTML-ish filler, generated chunk by chunk (never held in memory)."""
    block = (b"<p>" + b"a" * (chunk - 8) + b"</p>\n")[:chunk]

    def behave(h: Handler) -> None:
        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(size))
        h.end_headers()
        sent = 0
        while sent < size and not h.stopping.is_set():
            part = block[: min(chunk, size - sent)]
            if chunked:
                h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            else:
                h.wfile.write(part)
            sent += len(part)
        if chunked:
            h.wfile.write(b"0\r\n\r\n")

    return behave


@lru_cache(maxsize=4)
def gzip_bomb_bytes(decoded_size: int = 1 << 30) -> bytes:
    """A valid gzip member inflating to decoded_size zero bytes (~1 MB for 1 GB).

    Compressing 1 GB takes seconds, so one 1 MiB block is deflated with a full flush (which
    resets the window, making every block's output identical) and the block is repeated.
    """
    mib = 1 << 20
    assert decoded_size % mib == 0, "decoded_size must be a whole number of MiB"
    n = decoded_size // mib
    zeros = bytes(mib)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    final = comp.flush()  # an empty final block
    crc = 0
    for _ in range(n):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, decoded_size & 0xFFFFFFFF)
    return header + block * n + final + trailer


def gzip_bomb(decoded_size: int = 1 << 30, *, content_type: str = "text/html") -> Behaviour:
    """Content-Encoding: gzip of decoded_size zeros, sent pre-compressed."""
    body = gzip_bomb_bytes(decoded_size)
    return status_only(200, body, content_type=content_type,
                       headers={"Content-Encoding": "gzip"})


def gzipped(body: bytes, *, content_type: str = "text/html; charset=utf-8") -> Behaviour:
    """A normal page sent with Content-Encoding: gzip."""
    return status_only(200, gzip.compress(body), content_type=content_type,
                       headers={"Content-Encoding": "gzip"})


def reset_mid_response(*, announced: int = 100_000, sent: int = 1000) -> Behaviour:
    """Announce a length, send part of the body, then abort with a TCP RST."""

    def behave(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(announced))
        h.end_headers()
        h.wfile.write(b"<html><body>" + b"x" * max(0, sent - 12))
        h.wfile.flush()
        time.sleep(0.05)  # let the client see the headers before the RST
        h.reset()

    return behave


def reset_before_response() -> Behaviour:
    """Read the request, answer nothing, abort the connection with a TCP RST."""

    def behave(h: Handler) -> None:
        h.reset()

    return behave


def delayed(seconds: float, then: Behaviour) -> Behaviour:
    """Sleep before answering (a read timeout for a client with a shorter read timeout)."""

    def behave(h: Handler) -> None:
        if h.stopping.wait(seconds):
            return
        then(h)

    return behave


def file_response(path: Path, content_type: str | None = None) -> Behaviour:
    """Serve a file; `.gz` files are decompressed and typed by the inner name."""

    def behave(h: Handler) -> None:
        data = path.read_bytes()
        name = path.name
        if name.endswith(".gz"):
            data, name = gzip.decompress(data), name[:-3]
        ctype = content_type or _guess_type(name)
        h.send_body(200, data, content_type=ctype)

    return behave


def _guess_type(name: str) -> str:
    if name.endswith((".html", ".htm")):
        return "text/html"
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


@dataclass
class RouteSet:
    """A bundle of routes to register at once (e.g. a redirect chain)."""

    routes: dict[str, Behaviour] = field(default_factory=dict)

    def install(self, server: FixtureServer) -> FixtureServer:
        for path, behaviour in self.routes.items():
            server.route(path, behaviour)
        return server


def redirect_chain(prefix: str, hops: int, final: Behaviour, status: int = 302) -> RouteSet:
    """prefix/0 -> prefix/1 -> ... -> prefix/<hops>, which serves final."""
    rs = RouteSet()
    for i in range(hops):
        rs.routes[f"{prefix}/{i}"] = redirect(f"{prefix}/{i + 1}", status)
    rs.routes[f"{prefix}/{hops}"] = final
    return rs


def redirect_loop(prefix: str, length: int = 2) -> RouteSet:
    """prefix/0 -> prefix/1 -> ... -> prefix/0."""
    return RouteSet({f"{prefix}/{i}": redirect(f"{prefix}/{(i + 1) % length}")
                     for i in range(length)})


def http_date(ts: float | None = None) -> str:
    """An RFC 7231 date for Last-Modified / If-Modified-Since."""
    return formatdate(time.time() if ts is None else ts, usegmt=True)
