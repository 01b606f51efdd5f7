"""robots.txt: fetched once per origin, Disallow and Crawl-delay obeyed, outages allow."""

from __future__ import annotations

from newsflow.types import FetchSettings
from tasks.robots import RobotsDownload, parse_rules
from tests.fetch.conftest import MakeFetcher, local_source
from tests.support.httpserver import FixtureServer, delayed, static, status_only

PAGE = b"<html><body><p>ok</p></body></html>"
UA = FetchSettings().user_agent


def _robots(server: FixtureServer, text: str) -> None:
    server.static("/robots.txt", text.encode(), content_type="text/plain")


def test_robots_disallow(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    _robots(http_server, "User-agent: *\nDisallow: /private/\n")
    http_server.static("/private/a", PAGE)
    http_server.static("/public/a", PAGE)
    fetcher = make_fetcher()
    f = fetcher.fetch(http_server.url("/private/a"), source="local").failure
    assert f is not None
    assert (f.reason, f.transient, f.attempts) == ("robots_disallowed", False, 1)
    assert http_server.hits("/private/a") == 0
    assert fetcher.fetch(http_server.url("/public/a"), source="local").page is not None
    assert http_server.hits("/robots.txt") == 1  # cached per origin for the Fetcher's life


def test_robots_group_for_our_user_agent(http_server: FixtureServer,
                                         make_fetcher: MakeFetcher) -> None:
    _robots(http_server, "User-agent: *\nAllow: /\n\nUser-agent: newsflow\nDisallow: /\n")
    http_server.static("/a", PAGE)
    f = make_fetcher().fetch(http_server.url("/a"), source="local").failure
    assert f is not None and f.reason == "robots_disallowed"


def test_robots_disallow_on_redirect_target(http_server: FixtureServer,
                                            make_fetcher: MakeFetcher) -> None:
    _robots(http_server, "User-agent: *\nDisallow: /private/\n")
    http_server.route("/go", status_only(302, headers={"Location": "/private/x"}))
    f = make_fetcher().fetch(http_server.url("/go"), source="local").failure
    assert f is not None and f.reason == "robots_disallowed"


def test_obey_robots_false(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    _robots(http_server, "User-agent: *\nDisallow: /\n")
    http_server.static("/a", PAGE)
    res = make_fetcher(obey_robots=False).fetch(http_server.url("/a"), source="local")
    assert res.page is not None
    assert http_server.hits("/robots.txt") == 0


def test_robots_404_allows_all(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.static("/a", PAGE)  # no robots.txt route: the server answers 404
    assert make_fetcher().fetch(http_server.url("/a"), source="local").page is not None
    assert http_server.hits("/robots.txt") == 1


def test_robots_500_allows_all_and_is_not_retried(http_server: FixtureServer,
                                                  make_fetcher: MakeFetcher) -> None:
    http_server.route("/robots.txt", status_only(500))
    http_server.static("/a", PAGE)
    http_server.static("/b", PAGE)
    fetcher = make_fetcher(retries=2)
    assert fetcher.fetch(http_server.url("/a"), source="local").page is not None
    assert fetcher.fetch(http_server.url("/b"), source="local").page is not None
    assert http_server.hits("/robots.txt") == 1


def test_robots_timeout_allows_all(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.route("/robots.txt", delayed(3.0, static(b"User-agent: *\nDisallow: /\n",
                                                         content_type="text/plain")))
    http_server.static("/a", PAGE)
    assert make_fetcher().fetch(http_server.url("/a"), source="local").page is not None


def test_crawl_delay_honoured(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    _robots(http_server, "User-agent: *\nCrawl-delay: 0.3\n")
    http_server.static("/a", PAGE)
    http_server.static("/b", PAGE)
    fetcher = make_fetcher(sources=(local_source(min_delay=0.0),))
    results = fetcher.fetch_many([(http_server.url("/a"), "local"),
                                  (http_server.url("/b"), "local")])
    assert all(r.page is not None for r in results)
    times = sorted(r.at for r in http_server.requests if r.path in ("/a", "/b"))
    assert times[1] - times[0] >= 0.3 * 0.9


def test_parse_rules_policy() -> None:
    ok = parse_rules("http://x", RobotsDownload(status=200, body=b"User-agent: *\nDisallow: /p"))
    assert ok.outcome == "parsed"
    assert not ok.allowed("http://x/p/1", UA) and ok.allowed("http://x/q", UA)
    for dl, outcome in ((RobotsDownload(status=403), "allow_all:http_403"),
                        (RobotsDownload(status=503), "allow_all:http_503"),
                        (RobotsDownload(status=None, error="read_timeout"),
                         "allow_all:read_timeout")):
        rules = parse_rules("http://x", dl)
        assert rules.outcome == outcome and rules.allowed("http://x/p/1", UA)
        assert rules.crawl_delay(UA) is None
