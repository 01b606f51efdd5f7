"""Transient failures are retried with backoff; permanent ones are recorded at once."""

from __future__ import annotations

import socket
import time

from tests.fetch.conftest import MakeFetcher
from tests.support.httpserver import (
    FixtureServer,
    delayed,
    reset_before_response,
    reset_mid_response,
    retry_after_date,
    sequence,
    static,
    status_sequence,
    too_many_requests,
)

PAGE = b"<html><body><p>ok</p></body></html>"


def test_500_then_success_is_retried(http_server: FixtureServer,
                                     make_fetcher: MakeFetcher) -> None:
    http_server.route("/flaky", status_sequence([500, 200], body=PAGE))
    res = make_fetcher().fetch(http_server.url("/flaky"), source="local")
    assert res.page is not None and res.page.body == PAGE
    assert res.attempts == 2
    assert http_server.hits("/flaky") == 2


def test_persistent_503_gives_up_transient(http_server: FixtureServer,
                                           make_fetcher: MakeFetcher) -> None:
    http_server.route("/down", status_sequence([503]))
    f = make_fetcher(retries=2).fetch(http_server.url("/down"), source="local").failure
    assert f is not None
    assert (f.reason, f.status, f.transient, f.attempts) == ("http_503", 503, True, 3)
    assert http_server.hits("/down") == 3


def test_403_not_retried(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.route("/forbidden", status_sequence([403]))
    f = make_fetcher(retries=3).fetch(http_server.url("/forbidden"), source="local").failure
    assert f is not None and f.reason == "http_403" and not f.transient and f.attempts == 1
    assert http_server.hits("/forbidden") == 1


def test_429_honours_retry_after(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.route("/busy", sequence([too_many_requests("1"), static(PAGE)]))
    res = make_fetcher().fetch(http_server.url("/busy"), source="local")
    assert res.page is not None and res.attempts == 2
    first, second = http_server.requests_for("/busy")
    assert second.at - first.at >= 0.9  # waited the Retry-After second, not just the backoff


def test_429_retry_after_http_date(http_server: FixtureServer,
                                   make_fetcher: MakeFetcher) -> None:
    http_server.route("/busy", sequence([too_many_requests(retry_after_date(2)), static(PAGE)]))
    res = make_fetcher().fetch(http_server.url("/busy"), source="local")
    assert res.page is not None and res.attempts == 2
    first, second = http_server.requests_for("/busy")
    assert second.at - first.at >= 0.5  # the date has 1 s resolution


def test_429_retry_after_beyond_cap_is_not_waited(http_server: FixtureServer,
                                                  make_fetcher: MakeFetcher) -> None:
    http_server.route("/busy", too_many_requests("3600"))
    start = time.monotonic()
    f = make_fetcher().fetch(http_server.url("/busy"), source="local").failure
    assert time.monotonic() - start < 5
    assert f is not None and f.reason == "http_429" and f.transient and f.attempts == 1
    assert "Retry-After" in f.detail


def test_read_timeout_recorded_transient(http_server: FixtureServer,
                                         make_fetcher: MakeFetcher) -> None:
    http_server.route("/slow", delayed(3.0, static(PAGE)))
    f = make_fetcher(retries=1).fetch(http_server.url("/slow"), source="local").failure
    assert f is not None
    assert (f.reason, f.transient, f.attempts) == ("read_timeout", True, 2)


def test_connection_reset_mid_response(http_server: FixtureServer,
                                       make_fetcher: MakeFetcher) -> None:
    http_server.route("/reset", reset_mid_response())
    f = make_fetcher(retries=1).fetch(http_server.url("/reset"), source="local").failure
    assert f is not None
    assert (f.reason, f.transient, f.attempts) == ("connection_reset", True, 2)


def test_reset_then_success(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.route("/reset", sequence([reset_before_response(), static(PAGE)]))
    res = make_fetcher().fetch(http_server.url("/reset"), source="local")
    assert res.page is not None and res.attempts == 2


def test_connection_refused(make_fetcher: MakeFetcher) -> None:
    # A port that was just free: nothing listens there.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    f = make_fetcher(retries=1).fetch(f"http://127.0.0.1:{port}/", source="local").failure
    assert f is not None
    assert (f.reason, f.transient, f.attempts) == ("connect_error", True, 2)
