"""newsflow's cheaper extraction path gives what trafilatura's full path gives, on real pages."""

from __future__ import annotations

import random

import pytest
import trafilatura
from trafilatura.json_metadata import normalize_json
from trafilatura.metadata import JSON_MINIFY, extract_metadata

from tasks.extract import main_text
from tasks.trafilatura_fast import DATE_OPTIONS, _minify_json, _normalize_json, page_metadata
from tests.conftest import recorded_pages

PAGES = recorded_pages()
FIELDS = ("title", "author", "date", "url")


def test_page_metadata_equals_trafilatura_extract_metadata_on_recorded_pages() -> None:
    for page in PAGES:
        ours = page_metadata(trafilatura.load_html(page.html()), page.url)
        theirs = extract_metadata(trafilatura.load_html(page.html()), page.url, dict(DATE_OPTIONS))
        assert {f: getattr(ours, f) for f in FIELDS} == {f: getattr(theirs, f) for f in FIELDS}, \
            page.file


def test_fast_mode_failure_is_extracted_again_in_full_mode() -> None:
    # Fast mode returns this page's navigation (a whole-page dump); full mode finds the article.
    page = next(p for p in PAGES if p.file == "washingtontimes-indiana.html.gz")
    fast = trafilatura.bare_extraction(page.html(), url=page.url, fast=True,
                                       include_comments=False)
    doc = main_text(trafilatura.load_html(page.html()), page.url)
    expect = " ".join(page.expect.split())
    assert doc is not None and fast is not None
    assert expect not in " ".join(fast.text.split())
    assert expect in " ".join(doc.text.split())


def test_author_is_read_from_broken_json_ld_even_when_huge() -> None:
    # A live blog's JSON-LD can be hundreds of KB and invalid; the byline sits at its start.
    filler = ", ".join(f'{{"@type": "BlogPosting", "headline": "update {i}"' for i in range(20_000))
    html = (
        '<html><head><script type="application/ld+json">{"@type": "NewsArticle", '
        '"author": {"@type": "Person", "name": "Jane Roe"}, "liveBlogUpdate": [' + filler +
        '</script></head><body><p>Some text.</p></body></html>')
    doc = page_metadata(trafilatura.load_html(html), "https://example.org/live")
    assert doc.author == "Jane Roe"


@pytest.mark.parametrize("block", [
    '{"@context": "https://schema.org", "@type": "NewsArticle", "author": [5]}',  # TypeError
    '{"@context": "https://schema.org", "@graph": [1, 2]}',  # AttributeError
    "[" * 100_000 + "]" * 100_000,  # RecursionError in json.loads
])
def test_json_ld_of_odd_shape_gives_trafilaturas_metadata(block: str) -> None:
    # trafilatura's JSON-LD reader raises on these; only such errors are caught, as it does.
    html = (f'<html><head><title>A title here</title><script type="application/ld+json">{block}'
            '</script></head><body><p>Some text here.</p></body></html>')
    ours = page_metadata(trafilatura.load_html(html), "https://example.org/a")
    theirs = extract_metadata(trafilatura.load_html(html), "https://example.org/a", dict(DATE_OPTIONS))
    assert {f: getattr(ours, f) for f in FIELDS} == {f: getattr(theirs, f) for f in FIELDS}
    assert ours.title == "A title here"


def test_json_ld_normalisation_equals_trafilaturas() -> None:
    # _normalize_json drops lone surrogates with a regex; trafilatura filters character by character.
    samples = [
        '{"name": "Caf\\u00e9 \\ud83d\\ude00 \\ud800 alone"}',
        '{"a": "line\\nbreak\\ttab\\rret", "b": "&amp; <b>bold</b> &#233;"}',
        "plain text without escapes <i>but tags</i>",
        "\\u00e9\\udc00",
    ]
    for page in PAGES:  # the JSON-LD blocks of real pages too
        tree = trafilatura.load_html(page.html())
        samples += [e.text for e in tree.xpath('//script[@type="application/ld+json"]') if e.text]
    assert len(samples) > 10
    for text in samples:
        assert _normalize_json(text) == normalize_json(text), text[:80]


def test_json_ld_minifying_equals_trafilaturas() -> None:
    # Whitespace outside strings dropped token by token; trafilatura's regex goes character by
    # character. Unterminated strings, escaped quotes and stray backslashes are where they could part.
    rnd = random.Random(6)
    alphabet = ['"', "\\", " ", "\n", "\t", "a", "{", ":", ",", "\u00e9"]
    samples = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(5000)]
    for page in PAGES:
        tree = trafilatura.load_html(page.html())
        samples += [e.text for e in tree.xpath('//script[@type="application/ld+json"]') if e.text]
    for text in samples:
        assert _minify_json(text) == JSON_MINIFY.sub(r"\1", text), text[:80]
