"""parse_listing: article-looking links of a listing page, on the source's own domains."""

from __future__ import annotations

import gzip

import pytest

from newsflow.types import Source
from tasks.discover_input import DiscoveryParseError
from tasks.discover_listing import looks_like_article, parse_listing

from .conftest import read

HOMENEWS = "https://thehill.com/homenews/"
KXAN_PAGE = ("https://www.kxan.com/news/texas/voters-pass-increase-for-retired-public-education-"
             "workers-but-future-shortfalls-likely-to-emerge/")


def test_handwritten_listing(thehill: Source) -> None:
    urls = parse_listing(read("thehill_homenews_listing.html"), HOMENEWS, thehill)
    assert urls == [
        # header links count (trending stories live there), <nav> and <footer> links do not
        "https://thehill.com/policy/healthcare/4199999-fda-approves-new-rsv-vaccine-for-older-adults/",
        "https://thehill.com/homenews/senate/4200001-senate-votes-stopgap-funding-bill/",
        "https://thehill.com/policy/international/4190000-us-warns-north-korea-arms-russia/"
        "?utm_source=homepage&utm_medium=card",
        "https://www.thehill.com/homenews/2023/09/06/what-to-know-about-the-shutdown-fight",
        "https://thehill.com/changing-america/well-being/medical-advances/"
        "rare-fungal-infection-spreads-in-hospitals-cdc-says/",
        "https://thehill.com/opinion/white-house/4199000-the-case-for-a-bipartisan-budget-deal/",
    ]


def test_real_kxan_page(kxan: Source) -> None:
    body = gzip.decompress(read("kxan_article_page.html.gz"))
    urls = parse_listing(body, KXAN_PAGE, kxan)
    assert 30 <= len(urls) <= 60
    assert all(kxan.matches_host(u.split("/")[2]) for u in urls)
    assert KXAN_PAGE not in urls  # the page itself
    assert ("https://www.kxan.com/news/crime/"
            "homicide-detective-back-on-stand-at-kaitlin-armstrong-murder-trial/") in urls
    # Section fronts, author pages, the feed, PDFs, share links and nav menus are left out.
    for bad in ("https://www.kxan.com/news/texas/", "https://www.kxan.com/author/cora-neas/",
                "https://www.kxan.com/feed", "https://www.kxan.com/contact-us/",
                "https://www.kxan.com/meet-the-investigates-team/"):
        assert bad not in urls
    assert not any(u.endswith(".pdf") for u in urls)


def test_base_href_is_honoured(kxan: Source) -> None:
    body = (b'<html><head><base href="https://www.kxan.com/news/local/"></head><body>'
            b'<a href="austin/a-story-with-a-long-headline-slug/">x</a></body></html>')
    assert parse_listing(body, "https://www.kxan.com/", kxan) == [
        "https://www.kxan.com/news/local/austin/a-story-with-a-long-headline-slug/"]


def test_other_sources_are_ignored(kxan: Source) -> None:
    body = (b'<html><body><a href="https://thehill.com/homenews/4200001-senate-votes/">a</a>'
            b'<a href="https://kxan.com.evil.example/news/a-story-with-a-long-slug/">b</a>'
            b'<a href="https://news.kxan.com/news/a-story-on-a-subdomain-here/">c</a></body></html>')
    assert parse_listing(body, "https://www.kxan.com/", kxan) == [
        "https://news.kxan.com/news/a-story-on-a-subdomain-here/"]


@pytest.mark.parametrize(("path", "expected"), [
    ("/news/texas/voters-pass-increase-for-retired-workers/", True),  # headline slug
    ("/homenews/471033-south-dakota-governor", True),  # numeric id
    ("/2023/09/06/shutdown/", True),  # date path
    ("/news/12345678", True),
    ("/story/20230906/budget", True),
    ("/news/texas/", False),  # section
    ("/local-news/", False),
    ("/terms-of-service/", False),
    ("/tag/some-long-tag-name-here/", False),
    ("/author/jane-doe-smith-jones/", False),
    ("/homenews/page/2/", False),
    ("/video/senate-floor-debate-on-funding-bill/", False),
    ("/uploads/a-long-file-name-for-a-report.pdf", False),
    ("/", False),
    ("/search-results-for-this-query?s=x", False),
])
def test_looks_like_article(thehill: Source, path: str, expected: bool) -> None:
    assert looks_like_article("https://thehill.com" + path, thehill) is expected


def test_bad_bodies(thehill: Source) -> None:
    with pytest.raises(DiscoveryParseError) as info:
        parse_listing(b"  \n", HOMENEWS, thehill)
    assert info.value.reason == "not_html"
    # Not HTML at all: lxml still builds a document, which simply has no article links.
    assert parse_listing(b"\x00\x01\xff binary", HOMENEWS, thehill) == []
    assert parse_listing(read("billion_laughs.xml"), HOMENEWS, thehill) == []
