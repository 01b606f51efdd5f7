"""The shared FixtureServer itself: routes, conditional GET, request log, fast shutdown."""

from __future__ import annotations

import gzip
import http.client
import threading
import time
from pathlib import Path

import requests

from tests.support.httpserver import (
    FixtureServer,
    gzip_bomb_bytes,
    http_date,
    slow_drip,
    status_sequence,
)


def test_static_etag_and_log(http_server: FixtureServer) -> None:
    http_server.static("/a", b"<html>a</html>", etag='"1"', last_modified=http_date(1e9))
    r = requests.get(http_server.url("/a"), timeout=5)
    assert r.status_code == 200 and r.content == b"<html>a</html>" and r.headers["ETag"] == '"1"'
    r = requests.get(http_server.url("/a"), headers={"If-None-Match": '"1"'}, timeout=5)
    assert r.status_code == 304 and r.content == b""
    r = requests.get(http_server.url("/a"), headers={"If-Modified-Since": http_date(2e9)},
                     timeout=5)
    assert r.status_code == 304
    assert http_server.hits("/a") == 3
    assert http_server.requests_for("/a")[1].header("if-none-match") == '"1"'
    assert requests.get(http_server.url("/nope"), timeout=5).status_code == 404


def test_status_sequence_repeats_last(http_server: FixtureServer) -> None:
    http_server.route("/s", status_sequence([500, 503, 200]))
    codes = [requests.get(http_server.url("/s"), timeout=5).status_code for _ in range(4)]
    assert codes == [500, 503, 200, 200]


def test_mount_directory_serves_gz_decompressed(http_server: FixtureServer,
                                                tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html.gz").write_bytes(gzip.compress(b"<html>p</html>"))
    (tmp_path / "feed.xml").write_bytes(b"<rss/>")
    (tmp_path.parent / "outside.txt").write_bytes(b"secret")
    http_server.mount_directory("/site", tmp_path)
    r = requests.get(http_server.url("/site/sub/page.html"), timeout=5)
    assert r.content == b"<html>p</html>" and r.headers["Content-Type"] == "text/html"
    assert requests.get(http_server.url("/site/feed.xml"), timeout=5).content == b"<rss/>"
    # requests would normalise the "..": send the raw path with http.client.
    conn = http.client.HTTPConnection("127.0.0.1", http_server.port, timeout=5)
    conn.request("GET", "/site/../outside.txt")
    assert conn.getresponse().status == 404
    conn.close()


def test_gzip_bomb_is_valid_gzip() -> None:
    data = gzip_bomb_bytes(4 << 20)
    assert len(data) < 10_000
    assert gzip.decompress(data) == bytes(4 << 20)


def test_stop_is_fast_during_slow_drip() -> None:
    server = FixtureServer().start()
    server.route("/drip", slow_drip(interval=0.5, size=1000))
    got = threading.Event()

    def client() -> None:
        try:
            with requests.get(server.url("/drip"), stream=True, timeout=5) as r:
                r.raw.read(1)
                got.set()
                r.raw.read(1000)
        except Exception:  # the server going away mid-body is what this test does
            pass

    t = threading.Thread(target=client, daemon=True)
    t.start()
    assert got.wait(5)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1.5
    t.join(timeout=5)
