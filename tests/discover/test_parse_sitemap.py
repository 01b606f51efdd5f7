"""parse_sitemap on urlsets, sitemap indexes, Google News and gzip sitemaps, and hostile ones."""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib
from collections.abc import Callable

import defusedxml.ElementTree as safe_et
import pytest

from tasks.discover_input import MAX_XML_BYTES, DiscoveryParseError
from tasks.discover_sitemaps import parse_sitemap

from .conftest import read

HILL = "https://thehill.com/sitemap.xml"


def test_urlset_takes_loc_not_image_loc() -> None:
    result = parse_sitemap(read("thehill_sitemap_posts.xml"), HILL)
    assert result.children == []
    assert result.urls == [
        "https://thehill.com/policy/international/4190000-us-warns-north-korea-arms-russia/",
        "https://thehill.com/homenews/campaign/4190123-poll-shows-tight-race-in-ohio-senate-contest/",
        "https://www.kxan.com/news/national-politics/the-hill/"
        "us-warns-north-korea-over-arms-supply-to-russia/",
    ]


def test_google_news_sitemap() -> None:
    result = parse_sitemap(read("thehill_news_sitemap.xml"), "https://thehill.com/news-sitemap.xml")
    assert result.urls == [
        "https://thehill.com/homenews/senate/4200001-senate-votes-stopgap-funding-bill/",
        "https://thehill.com/policy/international/4190000-us-warns-north-korea-arms-russia/",
        "https://thehill.com/business/4200777-markets-rally-after-jobs-report/",
    ]
    assert result.children == []


def test_sitemap_index_children_newest_first_deduplicated() -> None:
    result = parse_sitemap(read("thehill_sitemap_index.xml"), HILL)
    assert result.urls == []
    assert result.children == [
        "https://thehill.com/sitemap.xml?yyyy=2023&mm=09&dd=06",
        "https://thehill.com/sitemap.xml?yyyy=2023&mm=09&dd=05",
        "https://thehill.com/sitemap.xml?yyyy=2023&mm=08&dd=31",
        "https://thehill.com/video-sitemap.xml",  # no lastmod: last
    ]


def test_gzip_sitemap() -> None:
    body = read("wgntv_sitemap.xml.gz")
    assert body[:2] == b"\x1f\x8b"
    result = parse_sitemap(body, "https://wgntv.com/sitemap.xml.gz")
    assert len(result.urls) == 200
    assert result.urls[0] == ("https://www.wgntv.com/news/chicago-news/"
                              "story-number-1-about-the-city-council-vote/")


def test_sitemap_without_namespace_and_text_sitemap() -> None:
    body = b"<urlset><url><loc>https://a.example/one-two-three</loc></url></urlset>"
    assert parse_sitemap(body, "https://a.example/s.xml").urls == ["https://a.example/one-two-three"]
    text = b"https://a.example/one\n\nhttps://a.example/two\n"
    assert parse_sitemap(text, "https://a.example/s.txt").urls == [
        "https://a.example/one", "https://a.example/two"]


def test_big_urlset_is_parsed_incrementally() -> None:
    n = 20_000
    body = ("<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
            + "".join(f"<url><loc>https://a.example/news/story-{i}-x-y</loc>"
                      f"<lastmod>2023-09-06</lastmod></url>" for i in range(n))
            + "</urlset>").encode()

    def peak_of(parse: Callable[[], object]) -> int:
        tracemalloc.start()
        try:
            parse()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    urls: list[str] = []
    incremental = peak_of(lambda: urls.extend(parse_sitemap(body, "https://a.example/s.xml").urls))
    whole_tree = peak_of(lambda: safe_et.fromstring(body))
    assert len(urls) == n
    # Clearing each <url> as it ends keeps well under a whole tree.
    assert incremental < 0.7 * whole_tree


def gzip_of_zeros(size: int) -> bytes:
    """A gzip body inflating to `size` zero bytes, built without holding `size` bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    parts = [packer.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(parts) + packer.flush()


def test_gzip_bomb_is_too_large_and_bounded() -> None:
    bomb = gzip_of_zeros(MAX_XML_BYTES + (2 << 20))
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(DiscoveryParseError) as info:
        parse_sitemap(bomb, "https://a.example/sitemap.xml.gz")
    assert info.value.reason == "too_large"
    assert time.perf_counter() - start < 5.0


def test_feed_is_not_a_sitemap() -> None:
    with pytest.raises(DiscoveryParseError) as info:
        parse_sitemap(read("kxan_feed.xml"), HILL)
    assert info.value.reason == "not_a_sitemap"


@pytest.mark.parametrize(("name", "reason"), [
    ("billion_laughs.xml", "xml_bomb"),
    ("xxe_feed.xml", "xml_bomb"),
    ("cloudflare_challenge.html", "not_xml"),
])
def test_hostile_bodies(name: str, reason: str) -> None:
    with pytest.raises(DiscoveryParseError) as info:
        parse_sitemap(read(name), HILL)
    assert info.value.reason == reason


def test_truncated_and_garbage() -> None:
    cut = read("thehill_news_sitemap.xml")[:700]
    for body in (cut, gzip.compress(cut), b"not a sitemap at all", b""):
        with pytest.raises(DiscoveryParseError) as info:
            parse_sitemap(body, HILL)
        assert info.value.reason == "not_xml"


def test_bomb_in_a_sitemap_index() -> None:
    body = b"""<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa">]>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>https://a.example/&a;.xml</loc></sitemap></sitemapindex>"""
    with pytest.raises(DiscoveryParseError) as info:
        parse_sitemap(body, HILL)
    assert info.value.reason == "xml_bomb"
