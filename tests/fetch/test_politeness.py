"""Per-host politeness: a minimum gap between requests, bounded concurrency, hosts in parallel."""

from __future__ import annotations

from tests.fetch.conftest import MakeFetcher, local_source
from tests.support.httpserver import FixtureServer, RecordedRequest, delayed, static

PAGE = b"<html><body><p>ok</p></body></html>"


def _pages(reqs: list[RecordedRequest]) -> list[RecordedRequest]:
    return sorted((r for r in reqs if r.path != "/robots.txt"), key=lambda r: r.at)


def test_min_delay_between_two_requests_to_one_host(http_server: FixtureServer,
                                                    make_fetcher: MakeFetcher) -> None:
    http_server.static("/a", PAGE)
    http_server.static("/b", PAGE)
    fetcher = make_fetcher(sources=(local_source(min_delay=0.3),))
    fetcher.fetch(http_server.url("/a"), source="local")
    fetcher.fetch(http_server.url("/b"), source="local")
    a, b = _pages(http_server.requests)
    assert b.at - a.at >= 0.3 * 0.9


def test_min_delay_also_in_fetch_many(http_server: FixtureServer,
                                      make_fetcher: MakeFetcher) -> None:
    for p in ("/a", "/b", "/c"):
        http_server.static(p, PAGE)
    fetcher = make_fetcher(sources=(local_source(min_delay=0.2, max_concurrency=3),))
    fetcher.fetch_many([(http_server.url(p), "local") for p in ("/a", "/b", "/c")])
    times = [r.at for r in _pages(http_server.requests)]
    assert len(times) == 3
    assert all(t2 - t1 >= 0.2 * 0.9 for t1, t2 in zip(times, times[1:], strict=False))


def test_max_concurrency_one_serialises_a_host(http_server: FixtureServer,
                                               make_fetcher: MakeFetcher) -> None:
    for p in ("/a", "/b"):
        http_server.route(p, delayed(0.3, static(PAGE)))
    fetcher = make_fetcher(sources=(local_source(min_delay=0.0, max_concurrency=1),),
                           read_timeout=2.0, total_timeout=3.0)
    results = fetcher.fetch_many([(http_server.url("/a"), "local"),
                                  (http_server.url("/b"), "local")])
    assert all(r.page is not None for r in results)
    a, b = _pages(http_server.requests)
    assert b.at - a.at >= 0.3 * 0.9  # the second waited for the first response


def test_hosts_fetched_in_parallel(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    with FixtureServer(host="127.0.0.2") as other:
        for srv in (http_server, other):
            for p in ("/a", "/b"):
                srv.route(p, delayed(0.4, static(PAGE)))
        sources = (local_source("one", max_concurrency=1, domains=("127.0.0.1",)),
                   local_source("two", max_concurrency=1, domains=("127.0.0.2",)))
        fetcher = make_fetcher(sources=sources, read_timeout=2.0, total_timeout=3.0)
        urls = [(http_server.url("/a"), "one"), (http_server.url("/b"), "one"),
                (other.url("/a"), "two"), (other.url("/b"), "two")]
        results = fetcher.fetch_many(urls)
        assert all(r.page is not None for r in results)
        first_one = _pages(http_server.requests)[0].at
        first_two = _pages(other.requests)[0].at
        # Had the hosts been fetched one after the other, the second host's first request
        # would come >= 0.8 s after the first's; in parallel they start together.
        assert abs(first_one - first_two) < 0.4
