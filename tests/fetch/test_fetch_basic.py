"""Ordinary fetching: what a RawPage carries, conditional GET, content types, encodings."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime
from pathlib import Path

from prefect.logging import disable_run_logger

from newsflow.types import FetchSettings
from tasks.fetch import Fetcher, fetch_batch
from tests.fetch.conftest import FAST, MakeFetcher, local_source
from tests.support.httpserver import (
    FixtureServer,
    gzipped,
    http_date,
    redirect_chain,
    static,
    status_only,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "fetch"
PAGE = b"<html><head><title>t</title></head><body><p>Hello</p></body></html>"


def test_page_fields(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    lm = http_date(1_700_000_000)
    http_server.static("/news/a", PAGE, etag='"abc"', last_modified=lm)
    before = datetime.now(UTC)
    res = make_fetcher().fetch(http_server.url("/news/a?utm_source=x"), source="local")
    assert res.failure is None and res.page is not None and not res.not_modified
    page = res.page
    assert page.body == PAGE
    assert page.status == 200
    assert page.content_type == "text/html; charset=utf-8"
    assert page.etag == '"abc"' and page.last_modified == lm
    assert page.url == http_server.url("/news/a")  # normalized: tracking parameter dropped
    assert page.final_url == http_server.url("/news/a?utm_source=x")
    assert page.source == "local"
    assert page.fetched_at.tzinfo is not None and page.fetched_at >= before
    assert res.attempts == 1


def test_identifying_headers_sent(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.static("/a", PAGE)
    make_fetcher().fetch(http_server.url("/a"), source="local")
    req = http_server.requests_for("/a")[0]
    assert req.header("User-Agent") == FAST.user_agent
    assert req.header("Accept-Encoding") == "gzip, deflate"  # only what we decode with a cap


def test_redirect_chain_sets_final_url(http_server: FixtureServer,
                                       make_fetcher: MakeFetcher) -> None:
    redirect_chain("/r", 3, static(PAGE)).install(http_server)
    res = make_fetcher().fetch(http_server.url("/r/0"), source="local")
    assert res.page is not None
    assert res.page.url == http_server.url("/r/0")
    assert res.page.final_url == http_server.url("/r/3")


def test_conditional_get_etag_304(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.static("/a", PAGE, etag='"v1"')
    res = make_fetcher().fetch(http_server.url("/a"), source="local", etag='"v1"')
    assert res.not_modified and res.page is None and res.failure is None
    assert http_server.requests_for("/a")[0].header("If-None-Match") == '"v1"'


def test_conditional_get_last_modified_304(http_server: FixtureServer,
                                           make_fetcher: MakeFetcher) -> None:
    lm = http_date(1_700_000_000)
    http_server.static("/a", PAGE, last_modified=lm)
    res = make_fetcher().fetch(http_server.url("/a"), source="local", last_modified=lm)
    assert res.not_modified
    assert http_server.requests_for("/a")[0].header("If-Modified-Since") == lm


def test_changed_etag_returns_page(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.static("/a", PAGE, etag='"v2"')
    res = make_fetcher().fetch(http_server.url("/a"), source="local", etag='"v1"')
    assert res.page is not None and res.page.etag == '"v2"'


def test_404_recorded_not_retried(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    res = make_fetcher(retries=3).fetch(http_server.url("/missing"), source="local")
    f = res.failure
    assert f is not None
    assert (f.reason, f.status, f.transient, f.attempts, f.stage) == (
        "http_404", 404, False, 1, "fetch")
    assert f.url == http_server.url("/missing") and f.source == "local"
    assert http_server.hits("/missing") == 1


def test_pdf_is_not_html(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.static("/doc.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
                       content_type="application/pdf")
    f = make_fetcher().fetch(http_server.url("/doc.pdf"), source="local").failure
    assert f is not None and f.reason == "not_html" and not f.transient


def test_pdf_served_as_octet_stream_is_not_html(http_server: FixtureServer,
                                                make_fetcher: MakeFetcher) -> None:
    http_server.static("/dl", b"%PDF-1.4 binary", content_type="application/octet-stream")
    f = make_fetcher().fetch(http_server.url("/dl"), source="local").failure
    assert f is not None and f.reason == "not_html"


def test_image_is_not_html(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.static("/x.png", b"\x89PNG\r\n\x1a\n" + bytes(100), content_type="image/png")
    f = make_fetcher().fetch(http_server.url("/x.png"), source="local").failure
    assert f is not None and f.reason == "not_html"


def test_xml_feed_accepted(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    feed = b'<?xml version="1.0"?><rss version="2.0"><channel></channel></rss>'
    http_server.static("/feed", feed, content_type="application/rss+xml")
    res = make_fetcher().fetch(http_server.url("/feed"), source="local")
    assert res.page is not None and res.page.body == feed


def test_empty_body(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.static("/empty", b"")
    http_server.route("/nocontent", status_only(204))
    for path in ("/empty", "/nocontent"):
        f = make_fetcher().fetch(http_server.url(path), source="local").failure
        assert f is not None and f.reason == "empty_body", path
        assert http_server.hits(path) == 1  # recorded, not retried within the run


def test_non_utf8_pages_bytes_intact(http_server: FixtureServer,
                                     make_fetcher: MakeFetcher) -> None:
    text = ("<html><body><p>Caf\u00e9 \u2013 \u201cna\u00efve\u201d r\u00e9sum\u00e9 \u20ac5"
            "</p></body></html>")
    cp1252 = text.encode("windows-1252")
    latin1 = "<html><body><p>Gr\u00fc\u00dfe aus K\u00f6ln</p></body></html>".encode("iso-8859-1")
    http_server.static("/cp1252", cp1252, content_type="text/html; charset=windows-1252")
    http_server.static("/cp1252-undeclared", cp1252, content_type="text/html")
    http_server.static("/latin1", latin1, content_type="text/html; charset=iso-8859-1")
    http_server.static("/latin1-undeclared", latin1, content_type="text/html")
    fetcher = make_fetcher()
    for path, body in (("/cp1252", cp1252), ("/cp1252-undeclared", cp1252),
                       ("/latin1", latin1), ("/latin1-undeclared", latin1)):
        res = fetcher.fetch(http_server.url(path), source="local")
        assert res.page is not None, (path, res.failure)
        assert res.page.body == body, path  # charset handling belongs to extraction
    page = fetcher.fetch(http_server.url("/cp1252"), source="local").page
    assert page is not None and page.content_type == "text/html; charset=windows-1252"


def test_content_encoding_gzip_decoded(http_server: FixtureServer,
                                       make_fetcher: MakeFetcher) -> None:
    http_server.route("/gz", gzipped(PAGE))
    res = make_fetcher().fetch(http_server.url("/gz"), source="local")
    assert res.page is not None and res.page.body == PAGE


def test_gzip_file_sitemap_unpacked(http_server: FixtureServer,
                                    make_fetcher: MakeFetcher) -> None:
    xml = b'<?xml version="1.0"?><urlset><url><loc>http://x/a</loc></url></urlset>'
    http_server.static("/sitemap.xml.gz", gzip.compress(xml), content_type="application/x-gzip")
    res = make_fetcher().fetch(http_server.url("/sitemap.xml.gz"), source="local")
    assert res.page is not None and res.page.body == xml
    assert res.page.content_type == "application/xml"


def test_recorded_page_round_trip(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    http_server.mount_directory("/2023/11", DATA)
    res = make_fetcher().fetch(http_server.url("/2023/11/miamitodaynews.com-Transitway.html"),
                               source="local")
    expected = gzip.decompress((DATA / "miamitodaynews.com-Transitway.html.gz").read_bytes())
    assert res.page is not None and res.page.body == expected


def test_fetch_many_keeps_order_and_mixes_outcomes(http_server: FixtureServer,
                                                   make_fetcher: MakeFetcher) -> None:
    for i in range(6):
        http_server.static(f"/p{i}", PAGE + str(i).encode())
    urls = [(http_server.url(f"/p{i}"), "local") for i in range(6)]
    urls.insert(3, (http_server.url("/missing"), "local"))
    urls.append(("ftp://example.com/file", "local"))
    results = make_fetcher().fetch_many(urls)
    assert [r.url for r in results] == [u for u, _ in urls]
    assert results[3].failure is not None and results[3].failure.reason == "http_404"
    assert results[-1].failure is not None and results[-1].failure.reason == "bad_scheme"
    bodies = [r.page.body for r in results if r.page is not None]
    assert bodies == [PAGE + str(i).encode() for i in range(6)]


def test_fetch_batch_task_fn(http_server: FixtureServer) -> None:
    http_server.static("/a", PAGE)
    settings: FetchSettings = FAST
    with disable_run_logger():
        results = fetch_batch.fn([(http_server.url("/a"), "local")], settings, (local_source(),))
    assert len(results) == 1 and results[0].page is not None


def test_bad_urls_never_raise(make_fetcher: MakeFetcher) -> None:
    fetcher: Fetcher = make_fetcher()
    for url in ("", "not a url", "http://", "http://[::1", "javascript:alert(1)",
                "http://host.invalid/"):
        res = fetcher.fetch(url, source="local")
        assert res.failure is not None, url
        assert res.failure.reason in {"bad_scheme", "unresolvable", "bad_url"}, (url, res.failure)


def test_deflate_with_and_without_zlib_header(http_server: FixtureServer,
                                              make_fetcher: MakeFetcher) -> None:
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw_deflate = raw.compress(PAGE) + raw.flush()
    http_server.route("/zlib", status_only(200, zlib.compress(PAGE), content_type="text/html",
                                           headers={"Content-Encoding": "deflate"}))
    http_server.route("/raw", status_only(200, raw_deflate, content_type="text/html",
                                          headers={"Content-Encoding": "deflate"}))
    fetcher = make_fetcher()
    for path in ("/zlib", "/raw"):
        res = fetcher.fetch(http_server.url(path), source="local")
        assert res.page is not None and res.page.body == PAGE, (path, res.failure)


def test_multi_member_gzip(http_server: FixtureServer, make_fetcher: MakeFetcher) -> None:
    body = gzip.compress(PAGE[:20]) + gzip.compress(PAGE[20:])
    http_server.route("/mm", status_only(200, body, content_type="text/html",
                                         headers={"Content-Encoding": "gzip"}))
    res = make_fetcher().fetch(http_server.url("/mm"), source="local")
    assert res.page is not None and res.page.body == PAGE
