"""parse_feed on real-shaped RSS 2.0, Atom and RSS 1.0 feeds, and on hostile bodies."""

from __future__ import annotations

import gzip
import time

import pytest

from tasks.discover_feeds import parse_feed
from tasks.discover_input import DiscoveryParseError

from .conftest import read

KXAN_FEED = "https://www.kxan.com/feed/"


def test_wordpress_rss2_item_links_in_order() -> None:
    urls = parse_feed(read("kxan_feed.xml"), KXAN_FEED)
    assert urls == [
        "https://www.kxan.com/news/national-politics/the-hill/"
        "us-warns-north-korea-over-arms-supply-to-russia/",
        # whitespace around the link is stripped; tracking params are filter_candidates' job
        "https://www.kxan.com/news/texas/voters-pass-increase-for-retired-public-education-"
        "workers-but-future-shortfalls-likely-to-emerge/?utm_source=rss&utm_medium=rss"
        "&utm_campaign=voters-pass-increase",
        # the #respond fragment is dropped, so the duplicate item collapses into this one
        "https://www.kxan.com/news/local/austin/"
        "austin-city-council-approves-budget-with-record-public-safety-spending/",
        # no <link>: the guid is a permalink by default
        "https://www.kxan.com/weather/flash-flood-warning-issued-for-travis-county/",
        # off-source links are kept here; filter_candidates drops them
        "https://thehill.com/homenews/senate/4200001-senate-votes-stopgap-funding-bill/",
    ]


def test_links_inside_item_html_are_not_items() -> None:
    urls = parse_feed(read("kxan_feed.xml"), KXAN_FEED)
    assert not any("some-other-story-linked-from-the-body" in u for u in urls)
    assert not any(u.startswith("javascript:") for u in urls)


def test_atom_alternate_links_resolved_against_xml_base() -> None:
    urls = parse_feed(read("thehill_atom.xml"), "https://thehill.com/news/atom.xml")
    assert urls == [
        "https://thehill.com/policy/international/4190000-us-warns-north-korea-arms-russia/",
        # entry-level xml:base, and the text/html alternate wins over the AMP one
        "https://thehill.com/homenews/senate/4200001-senate-votes-stopgap-funding-bill/",
        "https://thehill.com/business/4200777-markets-rally-after-jobs-report/",
    ]


def test_rss1_rdf_link_or_about() -> None:
    urls = parse_feed(read("rss1_feed.rdf"), "https://wgntv.com/feed/rdf/")
    assert urls == [
        "https://wgntv.com/news/chicago-news/cta-announces-new-bus-routes-for-fall/",
        "https://wgntv.com/news/chicago-news/lake-shore-drive-closure-this-weekend/",
    ]


def test_relative_rss_links_and_feedburner_orig_link() -> None:
    body = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel>
<item><link>/news/local/relative-link-to-a-story/</link></item>
<item><link>https://feedproxy.google.com/~r/kxan/~3/abc/</link>
  <feedburner:origLink>https://www.kxan.com/news/the-real-article-url-here/</feedburner:origLink>
</item></channel></rss>"""
    assert parse_feed(body, "https://www.kxan.com/feed/") == [
        "https://www.kxan.com/news/local/relative-link-to-a-story/",
        "https://www.kxan.com/news/the-real-article-url-here/",
    ]


def test_rss_with_legacy_public_doctype_is_accepted() -> None:
    body = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
  "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><item><link>https://a.example/x-y-z-w/</link></item></channel></rss>"""
    assert parse_feed(body, "https://a.example/feed") == ["https://a.example/x-y-z-w/"]


def test_empty_feed_is_not_an_error() -> None:
    body = b'<rss version="2.0"><channel><title>quiet day</title></channel></rss>'
    assert parse_feed(body, "https://a.example/feed/") == []


def test_gzipped_feed() -> None:
    body = gzip.compress(read("rss1_feed.rdf"))
    assert len(parse_feed(body, "https://wgntv.com/feed/rdf/")) == 2


def reason_of(body: bytes) -> str:
    with pytest.raises(DiscoveryParseError) as info:
        parse_feed(body, KXAN_FEED)
    return info.value.reason


def test_html_page_is_not_xml() -> None:
    with pytest.raises(DiscoveryParseError, match="HTML") as info:
        parse_feed(read("cloudflare_challenge.html"), KXAN_FEED)
    assert info.value.reason == "not_xml"


def test_billion_laughs_fails_fast_as_xml_bomb() -> None:
    start = time.perf_counter()
    assert reason_of(read("billion_laughs.xml")) == "xml_bomb"
    # Expanding it would take ~3 GB; refusing it is instant (generous bound for a noisy box).
    assert time.perf_counter() - start < 1.0


def test_external_entity_is_refused() -> None:
    with pytest.raises(DiscoveryParseError) as info:
        parse_feed(read("xxe_feed.xml"), KXAN_FEED)
    assert info.value.reason == "xml_bomb"
    assert "root:" not in str(info.value)  # /etc/passwd was never read into anything


def test_truncated_feed_is_not_xml() -> None:
    assert reason_of(read("truncated_feed.xml")) == "not_xml"


def test_sitemap_or_other_xml_is_not_a_feed() -> None:
    assert reason_of(read("thehill_news_sitemap.xml")) == "not_a_feed"
    assert reason_of(b"<?xml version='1.0'?><config><a>1</a></config>") == "not_a_feed"


@pytest.mark.parametrize("body", [b"", b"   \n", b"\x00\x01binary\xff", b"{\"json\": true}"])
def test_garbage_is_not_xml(body: bytes) -> None:
    assert reason_of(body) == "not_xml"


def test_corrupt_gzip_is_not_xml() -> None:
    assert reason_of(b"\x1f\x8b\x08\x00garbage-not-deflate") == "not_xml"


def test_html_after_a_comment_is_not_xml_but_html_inside_a_feed_is_fine() -> None:
    assert reason_of(b"<!-- cached 12:00 -->\n<html><body>Home</body></html>") == "not_xml"
    feed = (b'<rss version="2.0"><channel><description><![CDATA[<html><b>x</b>]]></description>'
            b"<item><link>https://www.kxan.com/news/a-b-c-d/</link></item></channel></rss>")
    assert parse_feed(feed, KXAN_FEED) == ["https://www.kxan.com/news/a-b-c-d/"]
