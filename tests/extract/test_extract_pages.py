"""Extraction on recorded real pages and on bad input: an Article or a Failure, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsflow.types import Article, Failure, RawPage
from tasks.extract import extract_page
from tasks.extract_pool import extract_batch
from tests.conftest import RecordedPage, recorded_pages

WHEN = datetime(2024, 1, 1, tzinfo=UTC)
PAGES = recorded_pages()


def _raw(body: bytes, content_type: str = "text/html", url: str = "https://example.org/a") -> RawPage:
    return RawPage(url=url, source="example.org", fetched_at=WHEN, body=body,
                   content_type=content_type)


def _article(page: RecordedPage) -> Article:
    result = extract_page(_raw(page.html(), url=page.url))
    assert isinstance(result, Article), result
    return result


@pytest.mark.parametrize("page", PAGES, ids=[p.file for p in PAGES])
def test_recorded_page_text(page: RecordedPage) -> None:
    art = _article(page)
    flat = " ".join(art.text.split())
    if page.expect:
        assert " ".join(page.expect.split()) in flat
    if page.expect_not:
        assert page.expect_not not in flat
    assert art.word_count > 50


@pytest.mark.parametrize("page", [p for p in PAGES if p.title], ids=lambda p: p.file)
def test_recorded_page_metadata(page: RecordedPage) -> None:
    art = _article(page)
    assert art.title and page.title.split()[0] in art.title
    if page.date:
        assert art.published_at is not None and art.published_at.date().isoformat() == page.date


def test_canonical_url_and_body_links() -> None:
    page = next(p for p in PAGES if p.file == "thehill-meth.html.gz")
    art = _article(page)
    assert art.canonical_url == page.url
    assert any("argusleader.com" in link for link in art.links)  # a source link in the body
    assert not any(link.endswith("/privacy-policy") for link in art.links)


def test_pdf_bytes_are_a_recorded_failure() -> None:
    result = extract_page(_raw(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "application/pdf"))
    assert isinstance(result, Failure) and result.reason == "not_html"


def test_pdf_bytes_served_as_html_are_still_refused() -> None:
    result = extract_page(_raw(b"%PDF-1.4 binary \x00\x01 stuff"))
    assert isinstance(result, Failure) and result.reason == "not_html"


def test_empty_body_is_a_recorded_failure() -> None:
    result = extract_page(_raw(b"   \n"))
    assert isinstance(result, Failure) and result.reason == "empty_body"


def test_page_without_main_text_is_a_recorded_failure() -> None:
    result = extract_page(_raw(b"<html><body><nav><a href='/x'>Home</a></nav></body></html>"))
    assert isinstance(result, Failure) and result.reason == "no_text"


PARAGRAPH = ("Le café de la gare a rouvert ses portes après des mois de travaux, à la grande joie "
             "des habitués qui se pressaient déjà devant l'entrée à l'aube, curieux de découvrir "
             "la nouvelle façade et le comptoir rénové. ")


def _latin1_page(declare_in_meta: bool) -> bytes:
    meta = '<meta charset="iso-8859-1">' if declare_in_meta else ""
    html = (f"<html><head>{meta}<title>Café</title></head><body><article><h1>Café</h1>"
            + "".join(f"<p>{PARAGRAPH}</p>" for _ in range(4)) + "</article></body></html>")
    return html.encode("iso-8859-1")


@pytest.mark.parametrize("content_type,meta", [
    ("text/html; charset=iso-8859-1", False),  # declared in the HTTP header
    ("text/html", True),                         # declared in the page only
    ("text/html", False),                        # declared nowhere: sniffed
])
def test_non_utf8_page_is_decoded(content_type: str, meta: bool) -> None:
    result = extract_page(_raw(_latin1_page(meta), content_type))
    assert isinstance(result, Article), result
    assert "café de la gare" in result.text
    assert "\ufffd" not in result.text


def test_future_date_is_not_trusted() -> None:
    html = (b'<html><head><meta property="article:published_time" content="2031-01-01T10:00:00Z">'
            b"</head><body><article>" + b"<p>" + PARAGRAPH.encode() * 3 + b"</p></article></body></html>")
    result = extract_page(_raw(html))
    assert isinstance(result, Article)
    assert result.published_at is not None and result.published_at.year == 2031
    assert result.date_trusted is False


def test_copyright_line_is_not_a_published_date() -> None:
    html = (b"<html><body><article>" + b"<p>" + PARAGRAPH.encode() * 3 + b"</p>"
            b"<p>\xc2\xa9 2023 Nexstar Media Inc. All rights reserved.</p></article></body></html>")
    result = extract_page(_raw(html))
    assert isinstance(result, Article) and result.published_at is None


def test_batch_task_runs_as_plain_function() -> None:
    page = PAGES[0]
    results = extract_batch.fn([_raw(page.html(), url=page.url), _raw(b"")])
    assert isinstance(results[0], Article) and isinstance(results[1], Failure)
