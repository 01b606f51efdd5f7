"""Hostile servers cost bounded time and memory: size caps, bombs, drips, redirect tricks."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from tests.fetch.conftest import MakeFetcher
from tests.support.httpserver import (
    FixtureServer,
    gzip_bomb,
    huge,
    redirect,
    redirect_chain,
    redirect_loop,
    slow_drip,
    static,
    status_only,
)

PAGE = b"<html><body><p>ok</p></body></html>"


def test_too_large_by_content_length(http_server: FixtureServer,
                                     make_fetcher: MakeFetcher) -> None:
    http_server.route("/huge", huge(1 << 30))
    f = make_fetcher(max_bytes=100_000).fetch(http_server.url("/huge"), source="local").failure
    assert f is not None and f.reason == "too_large" and not f.transient


def test_too_large_chunked_body_cut(http_server: FixtureServer,
                                    make_fetcher: MakeFetcher) -> None:
    # No Content-Length: the cap must be enforced while streaming.
    http_server.route("/huge", huge(1 << 30, chunked=True))
    start = time.monotonic()
    f = make_fetcher(max_bytes=200_000).fetch(http_server.url("/huge"), source="local").failure
    assert f is not None and f.reason == "too_large"
    assert time.monotonic() - start < 5


def test_body_exactly_at_cap_is_kept(http_server: FixtureServer,
                                     make_fetcher: MakeFetcher) -> None:
    body = b"<html>" + b"a" * (1000 - 6)
    http_server.static("/exact", body)
    res = make_fetcher(max_bytes=1000).fetch(http_server.url("/exact"), source="local")
    assert res.page is not None and res.page.body == body


def test_gzip_bomb_bounded(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.route("/bomb", gzip_bomb(1 << 30))  # ~1 MB on the wire, 1 GB inflated
    fetcher = make_fetcher(max_bytes=1_000_000)
    tracemalloc.start()
    start = time.monotonic()
    try:
        f = fetcher.fetch(http_server.url("/bomb"), source="local").failure
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f is not None and f.reason == "too_large"
    assert elapsed < 5
    # Inflating 1 GB would need 1 GB; we stop just past the 1 MB cap (the server's copy of the
    # compressed bomb, ~1 MB, is allocated in this process too).
    assert peak < 20_000_000, peak


def test_gzip_bomb_within_cap_is_decoded(http_server: FixtureServer,
                                         make_fetcher: MakeFetcher) -> None:
    http_server.route("/small", gzip_bomb(1 << 20))  # 1 MiB of zeros
    res = make_fetcher(max_bytes=2_000_000).fetch(http_server.url("/small"), source="local")
    assert res.page is not None and res.page.body == bytes(1 << 20)


def test_corrupt_gzip_is_decode_error(http_server: FixtureServer,
                                      make_fetcher: MakeFetcher) -> None:
    http_server.route("/bad", status_only(200, b"this is not gzip at all", content_type="text/html",
                                          headers={"Content-Encoding": "gzip"}))
    f = make_fetcher().fetch(http_server.url("/bad"), source="local").failure
    assert f is not None and f.reason == "decode_error" and not f.transient


def test_slow_drip_hits_deadline(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    # One byte every 50 ms never trips the 0.5 s read timeout; only the total deadline stops it.
    http_server.route("/drip", slow_drip(interval=0.05, size=100_000))
    start = time.monotonic()
    f = make_fetcher(total_timeout=1.0, read_timeout=0.5).fetch(
        http_server.url("/drip"), source="local").failure
    elapsed = time.monotonic() - start
    assert f is not None and f.reason == "deadline_exceeded" and f.transient
    assert f.attempts == 1  # the whole budget was spent: not retried within the run
    assert 0.9 <= elapsed < 1.0 + 0.5 + 1.0  # deadline + at most one read timeout + slack


def test_redirect_loop(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    redirect_loop("/loop", 3).install(http_server)
    f = make_fetcher().fetch(http_server.url("/loop/0"), source="local").failure
    assert f is not None and f.reason == "redirect_loop" and not f.transient
    assert http_server.hits("/loop/0") == 1


def test_self_redirect_is_a_loop(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.route("/self", redirect("/self"))
    f = make_fetcher().fetch(http_server.url("/self"), source="local").failure
    assert f is not None and f.reason == "redirect_loop"


def test_too_many_redirects(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    redirect_chain("/chain", 4, static(PAGE)).install(http_server)
    f = make_fetcher(max_redirects=3).fetch(http_server.url("/chain/0"), source="local").failure
    assert f is not None and f.reason == "too_many_redirects"
    assert http_server.hits("/chain/4") == 0
    ok = make_fetcher(max_redirects=4).fetch(http_server.url("/chain/0"), source="local")
    assert ok.page is not None


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/etc/passwd", "file:///etc/passwd",
                                    "gopher://127.0.0.1:6379/_INFO"])
def test_redirect_to_non_http_scheme(http_server: FixtureServer, make_fetcher: MakeFetcher,
                                     target: str) -> None:
    http_server.route("/go", redirect(target))
    f = make_fetcher().fetch(http_server.url("/go"), source="local").failure
    assert f is not None and f.reason == "bad_scheme" and not f.transient
    assert target in f.detail


def test_redirect_to_private_address_when_not_allowed(
        http_server: FixtureServer, make_fetcher: MakeFetcher,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Only 127.0.0.1 (the test server) is allowed; a second loopback address (127.0.0.2) and
    # the cloud metadata address must be refused when a redirect points there.
    monkeypatch.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "127.0.0.1/32")
    with FixtureServer(host="127.0.0.2") as internal:
        internal.static("/admin", PAGE)
        http_server.route("/to-internal", redirect(internal.url("/admin")))
        http_server.route("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/"))
        http_server.static("/fine", PAGE)
        fetcher = make_fetcher(allow_private_networks=False)
        assert fetcher.fetch(http_server.url("/fine"), source="local").page is not None
        for path in ("/to-internal", "/to-metadata"):
            f = fetcher.fetch(http_server.url(path), source="local").failure
            assert f is not None and f.reason == "private_address" and not f.transient, path
            assert "redirect hop 1" in f.detail
        assert internal.hits("/admin") == 0
        # The same redirect is followed when private networks are allowed: the guard is what
        # stopped it above, not the network.
        open_fetcher = make_fetcher(allow_private_networks=True)
        assert open_fetcher.fetch(http_server.url("/to-internal"), source="local").page is not None
