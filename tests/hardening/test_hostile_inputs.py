"""Every bad input of issue 5, end to end through the ingest flow against one hostile site.

One flow run meets all of them at once, so the assertions also prove the rest of the run goes
on: the good pages become articles, the run completes, in bounded time and memory. The
fetch-level mechanics are unit-tested in tests/fetch and tests/discover; this is the whole path.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flows.ingest import ingest
from tests.conftest import DATA, recorded_pages
from tests.hardening.site import article_html, failure, query, registry
from tests.support import httpserver as hs
from tests.support.httpserver import FixtureServer

pytestmark = pytest.mark.usefixtures("prefect_api")

GOOD = recorded_pages()[:2]
BILLION_LAUGHS = (DATA / "discover" / "billion_laughs.xml").read_bytes()
XXE = (DATA / "discover" / "xxe_feed.xml").read_bytes()
CAFE = ("<html><head>{meta}<title>Caf\xe9</title></head><body><article><h1>Caf\xe9 news</h1>"
        + "<p>Le caf\xe9 de la gare a rouvert ses portes apr\xe8s des mois de travaux, \xe0 la "
          "grande joie des habitu\xe9s qui se pressaient d\xe9j\xe0 devant l'entr\xe9e.</p>" * 4
        + "</article></body></html>")
QUOTES = ("<html><body><article><h1>Quotes</h1>"
          + "<p>\u201cWe reopened the caf\xe9\u201d, she said \u2014 after months of work.</p>" * 6
          + "</article></body></html>")
METADATA = "http://169.254.169.254/latest/meta-data/"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(2000)
MAX_BYTES = 2_000_000


def _urlset(urls: list[str]) -> bytes:
    locs = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return (f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{locs}</urlset>").encode()


def _index(urls: list[str]) -> bytes:
    locs = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in urls)
    return (f'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{locs}</sitemapindex>").encode()


# Article pages listed in the main feed: path -> (behaviour, expected failure reason or None for
# an article). Reasons are the labels stored in failures.reason.
PAGES: dict[str, tuple[hs.Behaviour, str | None]] = {
    "/news/good-0/": (hs.static(GOOD[0].html()), None),
    "/news/good-1/": (hs.static(GOOD[1].html()), None),
    "/h/too-large/": (hs.huge(50_000_000), "too_large"),
    "/h/too-large-chunked/": (hs.huge(50_000_000, chunked=True), "too_large"),
    "/h/gzip-bomb/": (hs.gzip_bomb(1 << 30), "too_large"),
    "/h/slow-drip/": (hs.slow_drip(interval=0.05), "deadline_exceeded"),
    "/h/redirect-loop/0": (hs.redirect("/h/redirect-loop/1"), "redirect_loop"),
    "/h/redirect-loop/1": (hs.redirect("/h/redirect-loop/0"), None),  # not in the feed
    "/h/to-file/": (hs.redirect("file:///etc/passwd"), "bad_scheme"),
    "/h/to-metadata/": (hs.redirect(METADATA), "private_address"),
    "/h/to-lan/": (hs.redirect("http://10.1.2.3/news/story/"), "private_address"),
    "/h/image/": (hs.static(PNG, content_type="image/png"), "not_html"),
    "/h/gone/": (hs.status_only(410, b"gone"), "http_410"),
    "/h/reset/": (hs.reset_mid_response(), "connection_reset"),
    "/h/reset-then-ok/": (hs.sequence([hs.reset_before_response(),
                                       hs.static(article_html(1))]), None),
    "/h/429-then-ok/": (hs.sequence([hs.too_many_requests("1"), hs.static(article_html(2))]),
                        None),
    "/h/503-then-ok/": (hs.status_sequence([503, 503, 200], body=article_html(3)), None),
    "/h/charset-missing-cp1252/": (hs.static(QUOTES.encode("cp1252"), content_type="text/html"),
                                   None),
    "/h/charset-unknown-name/": (hs.static(CAFE.format(meta="").encode(),
                                           content_type="text/html; charset=x-no-such"), None),
    "/h/charset-header-says-utf8/": (hs.static(CAFE.format(meta="").encode("latin-1"),
                                               content_type="text/html; charset=utf-8"), None),
    "/h/charset-header-says-latin1/": (hs.static(CAFE.format(meta="").encode(),
                                                 content_type="text/html; charset=iso-8859-1"),
                                       None),
}
FEED_PAGES = [p for p in PAGES if p != "/h/redirect-loop/1"] + [f"/h/many-redirects/{0}"]
MANY_REDIRECTS = hs.redirect_chain("/h/many-redirects", 8, hs.static(article_html(4)))
# Links a hostile feed may carry: none may be requested, stored or turned into a failure.
HOSTILE_LINKS = ["file:///etc/passwd", "javascript:alert(1)", "ftp://127.0.0.1/news/x/",
                 "http://10.0.0.1/news/lan-story/", METADATA, "http://[::1/news/broken/",
                 "gopher://127.0.0.1:70/1"]
# Feeds and sitemaps: path -> (behaviour, expected discover failure reason or None).
DISCOVERY: dict[str, tuple[hs.Behaviour, str | None]] = {
    "/feed-bomb/": (hs.static(BILLION_LAUGHS, content_type="application/rss+xml"), "xml_bomb"),
    "/feed-xxe/": (hs.static(XXE, content_type="application/rss+xml"), "xml_bomb"),
    "/feed-malformed/": (hs.static(b'<?xml version="1.0"?><rss><channel><item><link>http://',
                                   content_type="application/rss+xml"), "not_xml"),
    "/feed-html/": (hs.static(b"<!doctype html><html><body>Just a moment...</body></html>"),
                    "not_xml"),
    "/feed-gzip-bomb/": (hs.gzip_bomb(1 << 30, content_type="application/rss+xml"), "too_large"),
    "/feed-to-metadata/": (hs.redirect(METADATA), "private_address"),
    "/sm/bomb.xml": (hs.static(BILLION_LAUGHS, content_type="application/xml"), "xml_bomb"),
    "/sm/malformed.xml": (hs.static(b"<urlset><url><loc>http://127.0.0.1/x</loc>",
                                    content_type="application/xml"), "not_xml"),
    "/sm/gz-bomb.xml.gz": (hs.static(hs.gzip_bomb_bytes(1 << 30),
                                     content_type="application/x-gzip"), "too_large"),
}
FEEDS = ["/feed/", "/feed-bomb/", "/feed-xxe/", "/feed-malformed/", "/feed-html/",
         "/feed-gzip-bomb/", "/feed-to-metadata/"]
SITEMAPS = ["/sm/loop-a.xml", "/sm/bomb.xml", "/sm/malformed.xml", "/sm/gz-bomb.xml.gz",
            "/sm/ssrf-index.xml"]


@dataclass
class Run:
    server: FixtureServer
    db: str
    stats: dict[str, object]
    seconds: float
    peak_rss_growth_mb: float

    def url(self, path: str) -> str:
        return self.server.url(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("hostile")
    mp = pytest.MonkeyPatch()
    # Loopback (the fixture server) allowed, every other private address refused: the SSRF
    # guard works as in production for 10.x and the metadata endpoint.
    mp.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "127.0.0.1/32")
    with FixtureServer() as server:
        for path, (behaviour, _) in {**PAGES, **DISCOVERY}.items():
            server.route(path, behaviour)
        MANY_REDIRECTS.install(server)
        server.static("/feed/", _rss([server.url(p) for p in FEED_PAGES] + HOSTILE_LINKS),
                      content_type="application/rss+xml")
        server.static("/sm/loop-a.xml", _index([server.url("/sm/loop-b.xml"),
                                                server.url("/sm/loop-a.xml")]))
        server.static("/sm/loop-b.xml", _index([server.url("/sm/loop-a.xml"),
                                                server.url("/sm/urls.xml")]))
        server.static("/sm/urls.xml", _urlset([server.url("/news/from-sitemap/")]))
        server.static("/news/from-sitemap/", article_html(5))
        server.static("/sm/ssrf-index.xml", _index([METADATA + "sitemap.xml",
                                                    "file:///etc/passwd"]))
        reg = registry(tmp / "sources.toml", server, feeds=FEEDS, sitemaps=SITEMAPS,
                       allow_private=False, fetch=f"max_bytes = {MAX_BYTES}")
        db = str(tmp / "news.duckdb")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.monotonic()
        stats = ingest(sources_file=str(reg), db=db, workers=1, run_dedupe=False)
        seconds = time.monotonic() - start
        growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        yield Run(server, db, stats, seconds, growth)
    mp.undo()


def _rss(links: list[str]) -> bytes:
    items = "".join(f"<item><title>t{i}</title><link>{u}</link></item>"
                    for i, u in enumerate(links))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>H</title>'
            f"{items}</channel></rss>").encode()


def _text(run: Run, path: str) -> str:
    rows = query(run.db, "SELECT text FROM articles WHERE url = ?", [run.url(path)])
    assert rows, f"no article for {path}: failure {failure(run.db, run.url(path))}"
    return str(rows[0][0])


@pytest.mark.parametrize("path", [p for p, (_, r) in PAGES.items() if r is not None])
def test_bad_page_is_a_recorded_failure(run: Run, path: str) -> None:
    rec = failure(run.db, run.url(path))
    assert rec is not None, f"nothing recorded for {path}"
    stage, reason, _, _, _ = rec
    assert (stage, reason) == ("fetch", PAGES[path][1])


def test_too_many_redirects(run: Run) -> None:
    rec = failure(run.db, run.url("/h/many-redirects/0"))
    assert rec is not None and rec[1] == "too_many_redirects"
    assert run.server.hits("/h/many-redirects/8") == 0  # the chain was cut, not followed


@pytest.mark.parametrize("path", [p for p, (_, r) in PAGES.items()
                                  if r is None and "loop" not in p and "charset-header" not in p]
                         + ["/news/from-sitemap/"])
def test_page_that_recovers_or_is_fine_is_an_article(run: Run, path: str) -> None:
    assert len(_text(run, path).split()) > 10
    assert failure(run.db, run.url(path)) is None


def test_retried_pages_were_retried_and_429_waited(run: Run) -> None:
    assert run.server.hits("/h/503-then-ok/") == 3
    assert run.server.hits("/h/reset-then-ok/") == 2
    first, second = run.server.requests_for("/h/429-then-ok/")
    assert second.at - first.at >= 0.9  # Retry-After: 1 honoured


def test_transient_and_permanent_are_told_apart(run: Run) -> None:
    reset = failure(run.db, run.url("/h/reset/"))
    gone = failure(run.db, run.url("/h/gone/"))
    assert reset is not None and reset[3] is True and reset[4] == 3  # retried twice in the run
    assert gone is not None and gone[2:] == (410, False, 1)


@pytest.mark.parametrize("path", [p for p, (_, r) in DISCOVERY.items() if r is not None])
def test_bad_feed_or_sitemap_is_a_recorded_discover_failure(run: Run, path: str) -> None:
    rec = failure(run.db, run.url(path))
    assert rec is not None and (rec[0], rec[1]) == ("discover", DISCOVERY[path][1])


def test_sitemap_index_loop_is_read_once(run: Run) -> None:
    assert run.server.hits("/sm/loop-a.xml") == 1
    assert run.server.hits("/sm/loop-b.xml") == 1
    assert run.server.hits("/sm/urls.xml") == 1


def test_sitemap_child_on_a_private_address_is_refused(run: Run) -> None:
    rec = failure(run.db, METADATA + "sitemap.xml")
    assert rec is not None and (rec[0], rec[1]) == ("discover", "private_address")


def test_hostile_feed_links_are_never_requested_nor_stored(run: Run) -> None:
    rows = query(run.db, "SELECT url FROM failures UNION ALL SELECT url FROM raw_pages")
    stored = {str(r[0]) for r in rows}
    assert not [u for u in stored if "lan-story" in u or "broken" in u or u.startswith(
        ("file:", "javascript:", "ftp:", "gopher:"))]
    assert run.server.hits("/news/x/") == 0
    assert METADATA not in stored  # only the sitemap child was tried, and refused


def test_charset_missing_or_unknown_is_decoded(run: Run) -> None:
    assert "\u201cWe reopened the caf\xe9\u201d" in _text(run, "/h/charset-missing-cp1252/")
    assert "caf\xe9 de la gare" in _text(run, "/h/charset-unknown-name/")


@pytest.mark.parametrize("path", ["/h/charset-header-says-utf8/", "/h/charset-header-says-latin1/"])
def test_wrong_http_charset_is_decoded_correctly(run: Run, path: str) -> None:
    text = _text(run, path)
    assert "caf\xe9 de la gare" in text and "\ufffd" not in text and "\xc3" not in text


def test_run_goes_on_and_completes_in_bounded_time_and_memory(run: Run) -> None:
    assert query(run.db, "SELECT status FROM runs") == [("completed",)]
    good = [p for p in FEED_PAGES if PAGES.get(p, (None, "x"))[1] is None] + ["/news/from-sitemap/"]
    assert {str(r[0]) for r in query(run.db, "SELECT url FROM article_records")} == {
        run.url(p) for p in good}
    # Each bad input costs at most one deadline (3 s) plus retries: 60 s leaves room on a busy box.
    print(f"hostile run: {run.seconds:.1f} s, peak RSS growth {run.peak_rss_growth_mb:.0f} MB")
    assert run.seconds < 60, run.seconds
    # Two 1 GB gzip bombs and two 50 MB bodies went by: the process never held them.
    assert run.peak_rss_growth_mb < 300, run.peak_rss_growth_mb
    assert run.stats["failed"] == len(query(run.db, "SELECT url FROM failures"))

