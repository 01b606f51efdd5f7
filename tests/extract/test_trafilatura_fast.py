"""tasks.trafilatura_fast: the same output as trafilatura as shipped, on the covered version.

Its XPath expressions in Python select exactly what libxml2 selects; extract_page gives the
same articles with and without; another version falls back to stock with one warning.
"""

from __future__ import annotations

import copy
import logging
import random
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
import trafilatura
import trafilatura.xpaths
from lxml import etree
from trafilatura.htmlprocessing import convert_tags, tree_cleaning
from trafilatura.settings import Extractor

from newsflow.types import RawPage
from tasks import trafilatura_fast, xpath_match
from tasks.extract import extract_page
from tasks.trafilatura_fast import Document
from tasks.warc import iter_warc
from tasks.xpath_match import Translated
from tasks.xpath_subset import NotTranslated, translate
from tests.conftest import recorded_pages

DEMO_WARC = Path(__file__).resolve().parents[2] / "newsflow" / "data" / "demo.warc.gz"
RE = {"re": trafilatura.xpaths.REGEXP_NS}


def real_pages() -> list[tuple[str, bytes]]:
    """(url, html) of the recorded test pages and the demo WARC's pages: 44 real pages."""
    pages = [(p.url, p.html()) for p in recorded_pages()]
    pages += [(rec.url, rec.body) for rec in iter_warc(DEMO_WARC)]
    return pages


PAGES = real_pages()


def trees() -> Iterator[lxml.html.HtmlElement]:
    """Each page as trafilatura sees it: the raw tree, then the cleaned and converted one."""
    options = Extractor()
    for _, html in PAGES:
        raw = trafilatura.load_html(html)
        yield raw
        yield convert_tags(tree_cleaning(copy.copy(raw), options), options)


def originals() -> list[tuple[str, etree.XPath]]:
    """trafilatura's own expressions (as shipped, whatever the speed-ups replaced), each once."""
    out: dict[int, tuple[str, etree.XPath]] = {}
    for holder, key in trafilatura_fast.slots():
        x = holder[key]
        x = x.original if isinstance(x, Translated) else x
        out.setdefault(id(x), (str(key) if isinstance(key, str) else f"list item {key}", x))
    return list(out.values())


def test_each_translated_expression_selects_what_its_xpath_selects_on_real_pages() -> None:
    translated = 0
    for name, xpath in originals():
        try:
            fast = translate(xpath)
        except NotTranslated:
            continue
        translated += 1
        for tree in trees():
            assert fast(tree) == xpath(tree), name
    assert translated >= trafilatura_fast.COVERED.get(trafilatura.__version__, 25)


def test_the_costly_expressions_are_translated() -> None:
    # These ran on every page and were most of the callbacks' cost: if a trafilatura upgrade
    # rewrites them past what translate() reads, this says so instead of silently slowing down.
    x = trafilatura.xpaths
    for group in (x.OVERALL_DISCARD_XPATH, x.REMOVE_COMMENTS_AND_LISTS_XPATH,
                  x.RAW_TREE_PRUNE_XPATH, x.AUTHOR_DISCARD_XPATHS[:1], x.BODY_XPATH[:1],
                  x.AUTHOR_XPATHS[:1], [sys.modules["trafilatura.baseline"].BASIC_CLEAN_XPATH]):
        for item in group:
            translate(item.original if isinstance(item, Translated) else item)
    # html2txt's cleaning, on many pages: its cookie-banner branch is skipped on pages
    # whose class and id values cannot match it, which is what makes it cheap.
    assert isinstance(sys.modules["trafilatura.baseline"].BASIC_CLEAN_XPATH, xpath_match.Union)


@pytest.mark.parametrize("path, html", [
    # @id|@class is the attribute written first, not either of them
    (".//*[self::div][re:test(@id|@class, '^x$')]",
     '<div class="x" id="y">1</div><div id="y" class="x">2</div><div class="x">3</div>'),
    # a missing attribute is the empty string, which some patterns match
    (".//*[self::div or self::p][re:test(@class, '^$') or contains(@id, '')]",
     '<div>1</div><p class="a">2</p><p id="b">3</p>'),
    (".//*[self::div][starts-with(@id|@class, 'ab')]", '<div id="abc">1</div><div class="xab">2</div>'),
    (".//*[self::div][contains(translate(@class, 'AB', 'ab'), 'ab')]",
     '<div class="xAB">1</div><div class="Ab">2</div><div>3</div>'),
    (".//*[self::div][re:test(@class, 'foo', 'i')]", '<div class="FOO">1</div><div class="bar">2</div>'),
    # [1] is the first match among each element's children
    (".//*[self::div or self::p][@class='k'][1]",
     '<div><p class="k">1</p><p class="k">2</p></div><section><p class="k">3</p></section>'),
    # (...)[1] is the first match in the document
    ("(.//*[self::div or self::p][@class='k'])[1]", '<p>0</p><div class="k"><p class="k">2</p></div>'),
    (".//*[self::div][re:test(@class, 'box')][not(.//h1) or @id='keep']",
     '<div class="box"><h1>1</h1></div><div class="box" id="keep"><h1>2</h1></div>'
     '<div class="box">3</div>'),
    (".//*[self::div or self::ol][re:test(@class, 'c')][not(self::ol) or @id='x']",
     '<div class="c">1</div><ol class="c">2</ol><ol class="c" id="x">3</ol>'),
    # //* is the whole document, the root element included; .//* only below the context
    ("//*[self::html or self::div][@lang or @class]", '<div class="a">1</div>'),
    (".//*[@data-x or @aria-hidden='true']", '<div data-x="">1</div><span aria-hidden="true">2</span>'),
    # a union is each element any branch selects, once, in document order
    (".//p|.//*[self::div or self::p][@class='k']|.//span",
     '<div class="k"><span>1</span><p class="k">2</p></div><p>3</p>'),
    ("//*[self::div or self::a][@rel='author' or rel='me']|//author",
     '<div><rel>me</rel></div><a rel="author">1</a><author>2</author><div><rel>you</rel></div>'),
    # branches by attribute alone, skipped when a page's values rule them out (probes)
    (".//aside|.//*[re:test(@class, 'cookie-?bar', 'i') or re:test(@id, 'cookie-?bar', 'i')]",
     '<aside>1</aside><div class="x Cookie-Bar">2</div><p id="cookiebar">3</p>'),
    (".//aside|.//*[re:test(@class, 'cookie-?bar', 'i')]", '<aside>1</aside><div class="cookie">2</div>'),
    (".//*[re:test(@class, '^ad$') or contains(@id, 'promo')]|.//aside",
     '<div class="x\nad">1</div><div class="ad">2</div><p id="a-promo-b">3</p><aside>4</aside>'),
    (".//*[starts-with(@class, 'ad')]|.//aside", '<div class="bad">1</div><div class="ad x">2</div>'),
    (".//aside|.//*[re:test(@class, 'cookie-bar', 'i')]",
     '<div class="COOKIE-BAR">1</div><div class="cookie-bar">2</div>'),
    # a non-ASCII page: ignoring case, 's' matches the long s, which lowercasing keeps as it is
    (".//aside|.//*[re:test(@class, 's-bar', 'i')]", '<div class="\u017f-bar">1</div>'),
])
def test_edge_cases_match_libxml2(path: str, html: str) -> None:
    xpath = etree.XPath(path, namespaces=RE)
    tree = lxml.html.fromstring(f'<html lang="en"><body>{html}</body></html>')
    assert translate(xpath)(tree) == xpath(tree) != []


@pytest.mark.parametrize("path", [
    ".//*[self::div][@a and @b]",  # and
    ".//*[self::div][contains(translate(@id, 'AB', 'a'), 'a')]",  # translate() that deletes
    ".//*[self::div][1]|.//main",  # a union with a numbered branch
    "(.//main)[1]|.//p",
    ".//main|//p",  # a union across two axes
    ".//div/p",  # a child step
])
def test_other_shapes_are_left_to_libxml2(path: str) -> None:
    with pytest.raises(NotTranslated):
        translate(etree.XPath(path, namespaces=RE))


def _raw_pages() -> list[RawPage]:
    return [RawPage(url=url, source="s", fetched_at=datetime(2026, 1, 1, tzinfo=UTC), body=html,
                    status=200, content_type="text/html") for url, html in PAGES]


@contextmanager
def stock() -> Iterator[None]:
    """trafilatura as shipped for the block, then the fast path again."""
    trafilatura_fast.uninstall()
    try:
        yield
    finally:
        trafilatura_fast.install()


def test_this_trafilatura_is_a_covered_version() -> None:
    # Fails on a trafilatura upgrade: check the tests here pass on it, then add it to COVERED.
    assert trafilatura.__version__ in trafilatura_fast.COVERED
    assert trafilatura_fast.installed()  # tests/conftest.py installs it for the session
    with stock():
        assert trafilatura_fast.install() == trafilatura_fast.COVERED[trafilatura.__version__]


def test_extract_page_is_the_same_with_and_without_the_fast_path() -> None:
    # Stock means trafilatura as shipped throughout: its extract_metadata included.
    pages = _raw_pages()
    fast = [extract_page(p) for p in pages]
    with stock():
        assert not trafilatura_fast.installed()
        assert not any(isinstance(holder[key], Translated) for holder, key in trafilatura_fast.slots())
        plain = [extract_page(p) for p in pages]
    assert sum(1 for a in plain if hasattr(a, "text")) >= 40
    assert fast == plain


def test_stock_trafilatura_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    with stock():
        monkeypatch.setenv("NEWSFLOW_STOCK_TRAFILATURA", "1")
        assert trafilatura_fast.install() == 0
        assert not trafilatura_fast.installed()
        monkeypatch.delenv("NEWSFLOW_STOCK_TRAFILATURA")
        assert trafilatura_fast.install() > 0
    assert trafilatura_fast.installed()


def _fields(doc: Document) -> dict[str, object]:
    """A Document's values, its trees left out (they compare by identity)."""
    return {k: v for k, v in doc.as_dict().items() if k not in ("body", "commentsbody")}


def test_an_uncovered_version_falls_back_to_stock_with_one_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    page = next(p for p in _raw_pages() if p.url.startswith("http"))
    tree = trafilatura.load_html(page.body)
    with stock():
        expected = extract_page(page)
        expected_meta = trafilatura.extract_metadata(tree, page.url, dict(trafilatura_fast.DATE_OPTIONS))
        monkeypatch.setattr(trafilatura, "__version__", "99.0.0")
        monkeypatch.setattr(trafilatura_fast, "_warned", False)
        with caplog.at_level(logging.WARNING, logger="tasks.trafilatura_fast"):
            assert trafilatura_fast.install() == 0
            assert trafilatura_fast.install() == 0
        warnings = [r for r in caplog.records if r.name == "tasks.trafilatura_fast"]
        assert len(warnings) == 1 and "99.0.0" in warnings[0].getMessage()
        assert "as shipped" in warnings[0].getMessage()
        assert not trafilatura_fast.installed()
        assert not any(isinstance(holder[key], Translated) for holder, key in trafilatura_fast.slots())
        assert not isinstance(trafilatura.utils.INVALID_XML_CHARS, trafilatura_fast.InvalidXmlChars)
        assert extract_page(page) == expected
        meta = trafilatura_fast.metadata(trafilatura.load_html(page.body), page.url)
        assert _fields(meta) == _fields(expected_meta)  # stock: categories and tags too
        monkeypatch.undo()


def test_remembered_verdicts_stay_bounded_and_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xpath_match, "_VERDICTS_MAX", 3)
    verdicts = xpath_match.Verdicts(re.compile("^ad-|share"))
    values = ["ad-top", "x", "share-bar", "nav", "ad-top", "y-ad-", "share"]
    assert [verdicts[v] for v in values] == [True, False, True, False, True, False, True]
    assert len(verdicts) <= 3


def test_invalid_xml_characters_are_found_where_the_regex_finds_them() -> None:
    chars = trafilatura.utils.INVALID_XML_CHARS
    assert isinstance(chars, trafilatura_fast.InvalidXmlChars)  # tests/conftest.py installed it
    regex = chars.original
    # Every character of the class, its neighbours, and what shares UTF-8 bytes with U+FFFE/F.
    alphabet = [chr(c) for c in range(0x21)] + [
        "a", "\x7f", "\x80", "\xbe", "\xbf", "\xef", "\xff", "\u0100", "\uefbf", "\ufffd",
        "\ufffe", "\uffff", "\U00010000", "\U0010ffff", "\ud800", "\udfff"]
    rng = random.Random(7)
    texts = ["".join(rng.choices(alphabet, k=rng.randrange(12))) for _ in range(5000)]
    texts += [html.decode("utf-8", "replace") for _, html in PAGES]
    for text in texts:
        assert chars.absent(text) == (regex.search(text) is None), repr(text)
        assert chars.sub("", text) == regex.sub("", text), repr(text)
    with stock():
        assert trafilatura.utils.INVALID_XML_CHARS is regex
    assert isinstance(trafilatura.utils.INVALID_XML_CHARS, trafilatura_fast.InvalidXmlChars)
