"""Transient failures are retried in later runs once due (with growing backoff), even when no feed
lists them any more; permanent ones (404, 410, robots) never are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.ingest import ingest
from storage.db import writer
from tests.hardening.site import article_html, article_urls, failure, query, registry
from tests.support import httpserver as hs
from tests.support.httpserver import FixtureServer, Handler

pytestmark = pytest.mark.usefixtures("prefect_api")


def _rss(links: list[str]) -> bytes:
    items = "".join(f"<item><link>{u}</link></item>" for u in links)
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


class Outage:
    """503 while down, the article once up."""

    def __init__(self) -> None:
        self.down = True
        self.page = hs.static(article_html(7))

    def __call__(self, h: Handler) -> None:
        if self.down:
            h.send_body(503, b"maintenance", content_type="text/plain")
        else:
            self.page(h)


def _retry_state(db: str, url: str) -> tuple[int, datetime, datetime]:
    row = query(db, "SELECT attempts, last_failed_at, next_retry_at FROM failures WHERE url = ?",
                [url])[0]
    return int(row[0]), row[1], row[2]


def _make_due(db: str) -> None:
    with writer(db) as con:
        con.execute("UPDATE failures SET next_retry_at = ?", [datetime.now(UTC) - timedelta(minutes=1)])


def test_transient_failure_is_retried_in_a_later_run(http_server: FixtureServer,
                                                      tmp_path: Path) -> None:
    outage = Outage()
    http_server.route("/news/flaky/", outage)
    http_server.static("/news/good/", article_html(1))
    http_server.route("/news/missing/", hs.status_only(404))
    http_server.route("/news/gone/", hs.status_only(410))
    http_server.static("/robots.txt", b"User-agent: *\nDisallow: /private/\n",
                       content_type="text/plain")
    http_server.static("/private/story/", article_html(2))
    flaky, url = "/news/flaky/", http_server.url
    permanent = ["/news/missing/", "/news/gone/", "/private/story/"]
    feed = [url(p) for p in ["/news/good/", flaky, *permanent]]
    http_server.static("/feed/", _rss(feed), content_type="application/rss+xml")
    reg = str(registry(tmp_path / "s.toml", http_server, feeds=["/feed/"]))
    db = str(tmp_path / "n.duckdb")

    def run() -> None:
        ingest(sources_file=reg, db=db, workers=1, run_dedupe=False)

    # Run 1: 503 three times (retries = 2): a transient failure, due again in an hour or so.
    run()
    assert failure(db, url(flaky)) == ("fetch", "http_503", 503, True, 3)
    attempts, failed_at, due_at = _retry_state(db, url(flaky))
    first_backoff = due_at - failed_at
    assert timedelta(minutes=15) <= first_backoff <= timedelta(days=1)
    assert [(failure(db, url(p)) or ("", ""))[1] for p in permanent] == [
        "http_404", "http_410", "robots_disallowed"]

    # The feed rolls over: the flaky page is no longer listed anywhere.
    http_server.static("/feed/", _rss([url("/news/good/"), *[url(p) for p in permanent]]),
                       content_type="application/rss+xml")

    # Run 2, not yet due: not requested.
    run()
    assert http_server.hits(flaky) == 3

    # Run 3, due but still down: retried from the failures table alone; the backoff grows.
    _make_due(db)
    run()
    assert http_server.hits(flaky) == 6
    attempts, failed_at, due_at = _retry_state(db, url(flaky))
    assert attempts == 6 and due_at - failed_at > first_backoff

    # Run 4, due and back up: the article is stored and the failure cleared.
    _make_due(db)
    outage.down = False
    hits = {p: http_server.hits(p) for p in permanent}
    run()
    assert url(flaky) in article_urls(db)
    assert failure(db, url(flaky)) is None
    # Permanent failures were "due" too (every next_retry_at was set), still listed in the
    # feed, and never requested again.
    assert {p: http_server.hits(p) for p in permanent} == hits
    assert hits == {"/news/missing/": 1, "/news/gone/": 1, "/private/story/": 0}
