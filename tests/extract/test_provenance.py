"""Provenance cues on real pages: attribution links, credited publishers, dates with a time of day."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from newsflow.publishers import same_publisher
from newsflow.types import Article, RawPage
from tasks.extract import extract_page
from tasks.provenance import copyright_name, precise_time
from tasks.warc import iter_warc
from tests.conftest import RecordedPage, recorded_pages

DATA = Path(__file__).resolve().parents[1] / "data" / "provenance"
WHEN = datetime(2030, 1, 1, tzinfo=UTC)  # after every page's date: none is "in the future"
HILL_URL = "https://thehill.com/policy/international/4190000-us-warns-north-korea-arms-russia/"
SEED_URL = ("https://vigourtimes.com/"
            "us-issues-warning-to-north-korea-regarding-arms-supply-to-russia/")


def _extract(body: bytes, url: str, source: str = "example") -> Article:
    result = extract_page(RawPage(url=url, source=source, fetched_at=WHEN, body=body))
    assert isinstance(result, Article), result
    return result


def _recorded(file: str) -> Article:
    page = next(p for p in recorded_pages() if p.file == file)
    return _extract(page.html(), page.url)


@cache
def _demo_bodies() -> dict[str, bytes]:
    """The bundled demo WARC's synthetic North Korea pages, by URL."""
    warc = resources.files("newsflow").joinpath("data/demo.warc.gz")
    with resources.as_file(warc) as path:
        return {r.url: r.body for r in iter_warc(path)
                if r.url in (HILL_URL, SEED_URL) or "north-korea" in r.url}


def _seed_page() -> bytes:
    return _demo_bodies()[SEED_URL]


@pytest.mark.parametrize(("file", "url", "original"), [
    ("salon-grist.html.gz",
     "https://www.salon.com/2020/01/10/despite-everything-u-s-emissions-dipped-in-2019_partner/",
     "https://grist.org/energy/despite-everything-us-emissions-dipped-in-2019/"),
    ("dailymaverick-conversation.html.gz",
     "https://www.dailymaverick.co.za/article/2026-01-06-joburg-has-failed-its-informal-traders-"
     "t-there-is-a-solution-heres-what-the-city/",
     "https://theconversation.com/johannesburg-has-failed-its-informal-traders-policies-are-in-"
     "place-but-action-is-needed-270911"),
])
def test_attribution_link_on_real_republished_pages(file: str, url: str, original: str) -> None:
    art = _extract(gzip.decompress((DATA / file).read_bytes()), url)
    assert art.attribution_url == original


def test_attribution_link_on_the_seed_like_aggregator_page() -> None:
    # The "Reference" line under the copied text, outside what trafilatura keeps as the text.
    art = _extract(_seed_page(), SEED_URL, "vigourtimes")
    assert art.attribution_url == HILL_URL
    assert "Reference" not in art.text.split()


@pytest.mark.parametrize("page", recorded_pages(), ids=lambda p: p.file)
def test_no_attribution_from_nav_related_social_or_body_links(page: RecordedPage) -> None:
    # Each of these pages links other sites (menus, share buttons, sister sites, sources cited
    # in the text), and none of them is a copy crediting an original.
    art = _extract(page.html(), page.url)
    assert art.attribution_url is None


def test_foreign_related_posts_are_not_attribution() -> None:
    # The seed page's template without its Reference line, its Recent Posts on another site.
    body = _seed_page().replace(
        f'<p><a href="{HILL_URL}" target="_blank" rel="noopener">Reference</a></p>'.encode(), b"")
    body = body.replace(b'href="https://vigourtimes.com/', b'href="https://thehill.com/')
    assert b"Reference</a>" not in body and body.count(b'href="https://thehill.com/') > 5
    art = _extract(body, SEED_URL, "vigourtimes")
    assert art.attribution_url is None


def test_a_reference_to_the_page_own_site_is_not_attribution() -> None:
    body = _seed_page().replace(HILL_URL.encode(), b"https://www.vigourtimes.com/some-other-post/")
    assert _extract(body, SEED_URL, "vigourtimes").attribution_url is None


def test_foreign_copyright_line_is_the_credited_publisher() -> None:
    assert _extract(_seed_page(), SEED_URL, "vigourtimes").credited_publisher == "Nexstar Media Inc."
    # A real AP story on a CBS station: the AP line under the text, CBS's own in the footer.
    art = _extract(gzip.decompress((DATA / "cbslocal-ap.html.gz").read_bytes()),
                   "https://detroit.cbslocal.com/2019/11/19/michigan-officials-6th-fatality-"
                   "linked-to-eastern-equine-encephalitis-reported/")
    assert art.credited_publisher == "Associated Press"


def test_the_page_own_copyright_line_credits_nobody() -> None:
    # Without the Nexstar line, the seed page's only copyright line is its own "(c) 2023 Vigour
    # Times" (in the footer); the real Hill page's is "Capitol Hill Publishing Corp." (footer).
    body = _seed_page().replace("© 2023 Nexstar Media Inc.".encode(), b"")
    assert b"Nexstar" not in body and "© 2023 Vigour Times".encode() in body
    assert _extract(body, SEED_URL, "vigourtimes").credited_publisher is None
    assert _recorded("thehill-meth.html.gz").credited_publisher is None
    # Out of the footer, a line naming the site itself is still its own.
    own = body.replace(b'<p class="dmca-badge">',
                       "<p>© 2024 VigourTimes</p><p class=\"dmca-badge\">".encode())
    assert _extract(own, SEED_URL, "vigourtimes").credited_publisher is None


@pytest.mark.parametrize(("file", "published"), [
    # article:published_time 2019-11-18T23:04:24-05:00: the UTC day is the next one
    ("thehill-omar.html.gz", datetime(2019, 11, 19, 4, 4, 24, tzinfo=UTC)),
    ("thehill-meth.html.gz", datetime(2019, 11, 19, 11, 56, 43, tzinfo=UTC)),
    # the zoned article:published_time, not the earlier zoneless local sailthru.date 16:43:30
    ("kxan-voters.html.gz", datetime(2023, 11, 8, 22, 43, 30, tzinfo=UTC)),
    ("foxnews-china.html.gz", datetime(2023, 4, 26, 18, 20, 55, tzinfo=UTC)),
])
def test_time_of_day_is_kept_in_utc(file: str, published: datetime) -> None:
    art = _recorded(file)
    assert art.published_at == published and art.date_trusted


def test_a_timestamp_on_another_day_does_not_move_the_day() -> None:
    # venturebeat: htmldate's day is 2019-11-18 (the URL's), the meta tags say 2019-11-19 07:03Z.
    art = _recorded("venturebeat-wework.html.gz")
    assert art.published_at == datetime(2019, 11, 18, tzinfo=UTC)


def test_a_copyright_year_never_becomes_a_date() -> None:
    # The seed page gives no date but its "(c) 2023" lines.
    art = _extract(_seed_page(), SEED_URL, "vigourtimes")
    assert art.published_at is None and not art.date_trusted
    assert precise_time(date(2023, 1, 1), ["2023", "2023-01-01"]) is None


def test_the_demo_hill_page_says_it_is_a_reconstruction() -> None:
    body = _demo_bodies()[HILL_URL].decode()
    assert "RECONSTRUCTION" in body.split("<body", 1)[0]
    art = _extract(_demo_bodies()[HILL_URL], HILL_URL, "thehill")
    assert "pay a price" in art.text and "actively advancing" in art.text
    assert art.published_at == datetime(2023, 9, 5, 17, 32, tzinfo=UTC)


@pytest.mark.parametrize(("line", "name"), [
    ("© 2023 Nexstar Media Inc. All rights reserved. This material may not be published, "
     "broadcast, rewritten, or redistributed.", "Nexstar Media Inc."),
    ("Copyright 2023 Nexstar Media Inc.", "Nexstar Media Inc."),
    ("(c) 2024 VigourTimes", "VigourTimes"),
    ("© 1998 - 2023 Nexstar Media Inc. | All Rights Reserved.", "Nexstar Media Inc."),
    ("© 2013 Cable News Network. Turner Broadcasting System, Inc.", "Cable News Network"),
    ("Copyright © 2019 by The Hill", "The Hill"),
    ("© Getty Images", None),  # no year: a photo credit, not a copyright line
    ("Copyright 2019 lawsuit filed in court", None),
])
def test_copyright_name(line: str, name: str | None) -> None:
    assert copyright_name(line) == name


def test_publisher_names_compare_loosely() -> None:
    assert same_publisher("Nexstar Media Inc.", "Nexstar Media")
    assert same_publisher("VigourTimes", "Vigour Times")
    assert same_publisher("Nexstar Media Group, Inc.", "Nexstar Media Inc.")
    assert not same_publisher("Nexstar Media Inc.", "Vigour Times")
    assert not same_publisher("AP", "Apple")  # too short to match inside another name
