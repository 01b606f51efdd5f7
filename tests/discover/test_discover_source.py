"""discover_source end to end: real Fetcher against feeds and sitemaps served on 127.0.0.1."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest

from newsflow.types import FetchSettings, Source
from tasks import discover
from tasks.discover import discover_batch, discover_source
from tasks.fetch import Fetcher
from tests.support.httpserver import FixtureServer

from .conftest import read

SETTINGS = FetchSettings(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0, retries=0,
                         backoff=0.01, allow_private_networks=True)
ETAG = '"feed-v1"'


def local(name: str = "local", **fields: object) -> Source:
    return Source(name=name, publisher="P", kind="original", domains=("127.0.0.1",),
                  min_delay=0.0, **fields)  # type: ignore[arg-type]


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    # Politeness delays come from the sources given here: "local" has min_delay 0.
    f = Fetcher(SETTINGS, (local(),))
    yield f
    f.close()


def rss(*links: str) -> bytes:
    items = "".join(f"<item><title>t</title><link>{u}</link></item>" for u in links)
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


def urlset(*locs: str) -> bytes:
    body = "".join(f"<url><loc>{u}</loc></url>" for u in locs)
    return (f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>'
            ).encode()


def index(*locs: str) -> bytes:
    body = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in locs)
    return (f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}'
            "</sitemapindex>").encode()


def serve_site(srv: FixtureServer) -> Source:
    """A feed (with ETag), a sitemap index with a loop and a gzip child, and a listing page."""
    u = srv.url
    srv.static("/feed/", rss(u("/news/one-story-about-the-budget/?utm_source=rss"),
                             u("/news/two-story-about-the-weather/"),
                             "https://thehill.com/homenews/4200001-senate-votes/"),
               content_type="application/rss+xml; charset=UTF-8", etag=ETAG)
    srv.static("/sitemap.xml", index(u("/sitemap-posts.xml"), u("/sitemap-old.xml.gz"),
                                     u("/sitemap.xml")),
               content_type="application/xml", etag='"index-v1"')
    srv.static("/sitemap-posts.xml", urlset(u("/news/two-story-about-the-weather/"),
                                            u("/news/three-story-about-the-schools/")),
               content_type="application/xml")
    srv.static("/sitemap-old.xml.gz", gzip.compress(urlset(u("/news/2019/01/02/old-one/")),
                                                    mtime=0),
               content_type="application/x-gzip")
    listing = (b'<html><body><nav><a href="/news/nav-link-that-is-skipped-here/">n</a></nav>'
               b'<a href="/news/four-story-from-the-front-page/">4</a>'
               b'<a href="/tag/budget/">tag</a></body></html>')
    srv.static("/news/", listing)
    return local(feeds=(u("/feed/"),), sitemaps=(u("/sitemap.xml"),), pages=(u("/news/"),))


def test_feed_sitemaps_and_listing(http_server: FixtureServer, fetcher: Fetcher) -> None:
    srv = http_server
    source = serve_site(srv)
    known = {srv.url("/news/three-story-about-the-schools/")}
    result = discover_source(source, fetcher, known.__contains__)
    assert result.failures == []
    assert [(c.url, c.found_via) for c in result.candidates] == [
        (srv.url("/news/one-story-about-the-budget/"), srv.url("/feed/")),
        (srv.url("/news/two-story-about-the-weather/"), srv.url("/feed/")),
        # the sitemap's copy of story two is a duplicate; story three is already stored
        (srv.url("/news/2019/01/02/old-one/"), srv.url("/sitemap-old.xml.gz")),
        (srv.url("/news/four-story-from-the-front-page/"), srv.url("/news/")),
    ]
    assert all(c.source == "local" for c in result.candidates)
    assert srv.hits("/sitemap.xml") == 1  # the index listing itself is not fetched again
    feed_validators = result.validators[srv.url("/feed/")]
    assert feed_validators[0] == ETAG and feed_validators[2] is not None
    assert len(result.validators) == 5 and result.not_modified == []


def test_second_run_is_conditional(http_server: FixtureServer, fetcher: Fetcher) -> None:
    srv = http_server
    source = serve_site(srv)
    first = discover_source(source, fetcher, lambda _u: False)
    second = discover_source(source, fetcher, lambda _u: False, first.validators)
    # The feed answers 304 to If-None-Match; the others have no validators but the same bytes.
    assert srv.requests_for("/feed/")[-1].header("If-None-Match") == ETAG
    assert sorted(second.not_modified) == sorted(first.validators)
    assert second.candidates == [] and second.failures == []
    assert second.validators == first.validators
    # The index keeps no HTTP validators: it is re-read so that changed children are seen.
    assert first.validators[srv.url("/sitemap.xml")][:2] == (None, None)
    assert srv.requests_for("/sitemap.xml")[-1].header("If-None-Match") is None
    # A changed child of the unchanged index is parsed again; its sha256 is updated.
    srv.static("/sitemap-posts.xml", urlset(srv.url("/news/five-a-brand-new-story/")),
               content_type="application/xml")
    third = discover_source(source, fetcher, lambda _u: False, second.validators)
    assert [c.url for c in third.candidates] == [srv.url("/news/five-a-brand-new-story/")]
    posts = srv.url("/sitemap-posts.xml")
    assert third.validators[posts][2] != first.validators[posts][2]


def test_bad_feeds_are_recorded_not_raised(http_server: FixtureServer, fetcher: Fetcher) -> None:
    srv = http_server
    srv.static("/bomb.xml", read("billion_laughs.xml"), content_type="application/xml")
    srv.static("/html-feed", read("cloudflare_challenge.html"))
    srv.static("/not-a-sitemap.xml", read("kxan_feed.xml"), content_type="application/xml")
    srv.static("/ok.xml", rss(srv.url("/news/a-fine-story-after-all/")),
               content_type="application/xml")
    source = local(feeds=(srv.url("/missing-feed/"), srv.url("/bomb.xml"),
                          srv.url("/html-feed"), srv.url("/ok.xml")),
                   sitemaps=(srv.url("/not-a-sitemap.xml"),))
    result = discover_source(source, fetcher, lambda _u: False)
    reasons = {f.url.removeprefix(srv.base_url): f.reason for f in result.failures}
    assert reasons == {"/missing-feed/": "http_404", "/bomb.xml": "xml_bomb",
                       "/html-feed": "not_xml", "/not-a-sitemap.xml": "not_a_sitemap"}
    assert all(f.stage == "discover" and f.source == "local" for f in result.failures)
    assert [c.url for c in result.candidates] == [srv.url("/news/a-fine-story-after-all/")]
    # Only the good feed's validators are kept: broken ones are parsed again next run.
    assert list(result.validators) == [srv.url("/ok.xml")]


def test_sitemap_depth_and_child_caps(http_server: FixtureServer, fetcher: Fetcher,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    srv = http_server
    cap = 5  # the real cap (50) works the same; a small one keeps the test fast
    monkeypatch.setattr(discover, "MAX_SITEMAP_CHILDREN", cap)
    u = srv.url
    # A chain of indexes deeper than the limit: /d0 -> /d1 -> /d2 -> /d3 -> /d4.
    for depth in range(4):
        srv.static(f"/d{depth}.xml", index(u(f"/d{depth + 1}.xml")), content_type="application/xml")
    srv.static("/d4.xml", urlset(u("/news/too-deep-story-x-y/")), content_type="application/xml")
    # An index with more children than the per-source cap.
    n = cap + 3
    srv.static("/wide.xml", index(*(u(f"/w{i}.xml") for i in range(n))),
               content_type="application/xml")
    for i in range(n):
        srv.static(f"/w{i}.xml", urlset(u(f"/news/wide-story-number-{i}/")),
                   content_type="application/xml")
    deep = discover_source(local(sitemaps=(u("/d0.xml"),)), fetcher, lambda _u: False)
    assert [srv.hits(f"/d{d}.xml") for d in range(5)] == [1, 1, 1, 1, 0]
    assert deep.failures == []
    wide = discover_source(local(sitemaps=(u("/wide.xml"),)), fetcher, lambda _u: False)
    assert sum(srv.hits(f"/w{i}.xml") for i in range(n)) == cap
    assert len(wide.candidates) == cap


def test_discover_batch_fn(http_server: FixtureServer) -> None:
    srv = http_server
    srv.static("/a.xml", rss(srv.url("/news/story-of-source-a-here/")),
               content_type="application/xml")
    srv.static("/b.xml", rss(srv.url("/news/story-of-source-b-here/")),
               content_type="application/xml", etag='"b1"')
    a = local("a", feeds=(srv.url("/a.xml"),))
    b = Source(name="b", publisher="P", kind="syndicator", domains=("localhost",),
               feeds=(srv.url("/b.xml"),), min_delay=0.0)
    known = frozenset({srv.url("/news/story-of-source-a-here/")})
    results = discover_batch.fn((a, b), SETTINGS, known, {srv.url("/b.xml"): ('"b1"', None)})
    assert [r.source for r in results] == ["a", "b"]
    assert results[0].candidates == [] and results[0].failures == []
    assert results[1].not_modified == [srv.url("/b.xml")]
