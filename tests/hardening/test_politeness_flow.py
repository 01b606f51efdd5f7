"""Politeness end to end through the ingest flow: robots.txt, Crawl-delay, per-source delay and
concurrency from sources.toml, conditional GET of feeds across runs, stored URLs not refetched."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from flows.ingest import ingest
from tests.hardening.site import article_html, article_urls, failure, query, registry
from tests.support import httpserver as hs
from tests.support.httpserver import FixtureServer, Handler, RecordedRequest

pytestmark = pytest.mark.usefixtures("prefect_api")


def _rss(links: list[str]) -> bytes:
    items = "".join(f"<item><link>{u}</link></item>" for u in links)
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


def _serve_pages(server: FixtureServer, first: int, n: int,
                 wrap: hs.Behaviour | None = None) -> list[str]:
    paths = [f"/news/story-{i}/" for i in range(first, first + n)]
    for i, p in enumerate(paths, start=first):
        server.route(p, wrap or hs.static(article_html(i)))
    return paths


def _run(reg: Path, db: Path) -> dict[str, object]:
    return ingest(sources_file=str(reg), db=str(db), workers=1, run_dedupe=False)


def _gaps(reqs: list[RecordedRequest]) -> list[float]:
    times = sorted(r.at for r in reqs)
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_robots_disallow_and_crawl_delay_cached_per_host(http_server: FixtureServer,
                                                         tmp_path: Path) -> None:
    http_server.static("/robots.txt", b"User-agent: *\nDisallow: /private/\nCrawl-delay: 0.3\n",
                       content_type="text/plain")
    pages = _serve_pages(http_server, 0, 3)
    http_server.static("/private/secret-story/", article_html(99))
    http_server.static("/feed/", _rss([http_server.url(p) for p in pages]
                                      + [http_server.url("/private/secret-story/")]),
                       content_type="application/rss+xml")
    reg = registry(tmp_path / "s.toml", http_server, feeds=["/feed/"])
    db = tmp_path / "n.duckdb"
    _run(reg, db)
    assert http_server.hits("/robots.txt") == 1  # one download for discovery and fetching
    assert http_server.hits("/private/secret-story/") == 0
    assert failure(str(db), http_server.url("/private/secret-story/")) == (
        "fetch", "robots_disallowed", None, False, 1)
    assert article_urls(str(db)) == {http_server.url(p) for p in pages}
    # Crawl-delay 0.3 s between every request to the host after robots.txt (feed and pages).
    after_robots = [r for r in http_server.requests if r.path != "/robots.txt"]
    assert min(_gaps(after_robots)) >= 0.3 * 0.9, _gaps(after_robots)

    # Even when every failure is "due", a robots-disallowed URL still in the feed is never
    # fetched again: it is a permanent failure.
    with_writer(db, "UPDATE failures SET next_retry_at = now() - INTERVAL 1 MINUTE")
    _run(reg, db)
    assert http_server.hits("/private/secret-story/") == 0


class InFlight:
    """A behaviour wrapper counting concurrent requests (max_concurrency made visible)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.now, self.peak = seconds, 0, 0
        self.lock = threading.Lock()

    def __call__(self, then: hs.Behaviour) -> hs.Behaviour:
        def behave(h: Handler) -> None:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                if not h.stopping.wait(self.seconds):
                    then(h)
            finally:
                with self.lock:
                    self.now -= 1
        return behave


@pytest.mark.parametrize(("min_delay", "max_concurrency"), [(0.25, 1), (0.0, 3)])
def test_source_min_delay_and_max_concurrency(http_server: FixtureServer, tmp_path: Path,
                                              min_delay: float, max_concurrency: int) -> None:
    flight = InFlight(0.3)
    paths = [f"/news/story-{i}/" for i in range(6)]
    for i, p in enumerate(paths):
        http_server.route(p, flight(hs.static(article_html(i))))
    http_server.static("/feed/", _rss([http_server.url(p) for p in paths]),
                       content_type="application/rss+xml")
    reg = registry(tmp_path / "s.toml", http_server, feeds=["/feed/"], min_delay=min_delay,
                   max_concurrency=max_concurrency)
    db = tmp_path / "n.duckdb"
    _run(reg, db)
    assert len(article_urls(str(db))) == 6
    assert flight.peak <= max_concurrency
    page_reqs = [r for r in http_server.requests if r.path.startswith("/news/")]
    if max_concurrency == 1:
        # Each request starts min_delay after the previous one started, and not before the
        # previous response (0.3 s) is done.
        assert min(_gaps(page_reqs)) >= 0.3 * 0.9
        assert min(_gaps(http_server.requests)) >= min_delay * 0.9
    else:
        assert flight.peak >= 2  # six 0.3 s pages really were fetched in parallel


def with_writer(db: Path, sql: str) -> None:
    from storage.db import writer

    with writer(db) as con:
        con.execute(sql)


class ChangingEtag:
    """A feed whose ETag changes on every response while its bytes do not (stale validators)."""

    def __init__(self, body: bytes) -> None:
        self.body, self.n = body, 0

    def __call__(self, h: Handler) -> None:
        self.n += 1
        h.send_body(200, self.body, content_type="application/rss+xml",
                    headers={"ETag": f'"r{self.n}"'})


def test_conditional_get_across_runs(http_server: FixtureServer, tmp_path: Path) -> None:
    a = _serve_pages(http_server, 0, 2)
    b = _serve_pages(http_server, 10, 2)
    c = _serve_pages(http_server, 20, 2)
    urls = http_server.url
    http_server.static("/feed-etag/", _rss([urls(p) for p in a]), etag='"v1"',
                       content_type="application/rss+xml")
    http_server.static("/feed-lm/", _rss([urls(p) for p in b]), last_modified=hs.http_date(1e9),
                       content_type="application/rss+xml")
    stale = ChangingEtag(_rss([urls(p) for p in c]))
    http_server.route("/feed-stale/", stale)
    reg = registry(tmp_path / "s.toml", http_server,
                   feeds=["/feed-etag/", "/feed-lm/", "/feed-stale/"])
    db = tmp_path / "n.duckdb"
    first = _run(reg, db)
    assert first["new_articles"] == 6
    stored = query(str(db), "SELECT url, etag, last_modified, body_sha256 IS NOT NULL "
                            "FROM http_validators ORDER BY url")
    assert [(r[1], r[2] is not None, r[3]) for r in stored] == [
        ('"v1"', False, True), (None, True, True), ('"r1"', False, True)]

    mark = len(http_server.requests)
    second = _run(reg, db)
    new = http_server.requests[mark:]
    by_path = {r.path: r for r in new}
    assert by_path["/feed-etag/"].header("If-None-Match") == '"v1"'
    assert by_path["/feed-lm/"].header("If-Modified-Since") == hs.http_date(1e9)
    assert by_path["/feed-stale/"].header("If-None-Match") == '"r1"'  # ignored by the server
    assert not [r for r in new if r.path.startswith("/news/")]  # nothing refetched
    outcomes = dict(query(str(db), "SELECT url, outcome FROM fetch_attempts WHERE run_id = ("
                                   "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)"))
    assert outcomes == {urls("/feed-etag/"): "not_modified", urls("/feed-lm/"): "not_modified",
                        urls("/feed-stale/"): "not_modified"}  # the last by its body hash
    sources = second["sources"]
    assert isinstance(sources, list) and sources[0]["not_modified"] == 3

    # A changed feed: only its new article is fetched, the stored ones are not.
    d = _serve_pages(http_server, 30, 1)
    http_server.static("/feed-etag/", _rss([urls(p) for p in a + d]), etag='"v2"',
                       content_type="application/rss+xml")
    mark = len(http_server.requests)
    third = _run(reg, db)
    fetched = [r.path for r in http_server.requests[mark:] if r.path.startswith("/news/")]
    assert fetched == d and third["new_articles"] == 1
