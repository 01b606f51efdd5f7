"""tasks.speedups: trafilatura's XPath expressions in Python select exactly what libxml2 selects."""

from __future__ import annotations

import copy
import random
import re
import sys
from collections.abc import Iterator
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
from tasks import speedups
from tasks.extract import extract_page
from tasks.speedups import NotTranslated, Translated, translate
from tasks.warc import iter_warc
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
    for holder, key in speedups.slots():
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
    assert translated >= 25  # trafilatura 2.3.1 has 26 translatable expressions


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
    assert isinstance(sys.modules["trafilatura.baseline"].BASIC_CLEAN_XPATH, speedups._Union)


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


def test_extract_page_is_the_same_with_and_without_the_speedups() -> None:
    pages = [RawPage(url=url, source="s", fetched_at=datetime(2026, 1, 1, tzinfo=UTC), body=html,
                     status=200, content_type="text/html") for url, html in PAGES]
    assert speedups.installed()  # tasks.extract installs them on import
    fast = [extract_page(p) for p in pages]
    speedups.uninstall()
    try:
        assert not speedups.installed()
        stock = [extract_page(p) for p in pages]
    finally:
        speedups.install()
    assert sum(1 for a in stock if hasattr(a, "text")) >= 40
    assert fast == stock


def test_stock_trafilatura_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    speedups.uninstall()
    try:
        monkeypatch.setenv(speedups.STOCK_ENV, "1")
        assert speedups.install() == 0
        assert not speedups.installed()
        monkeypatch.delenv(speedups.STOCK_ENV)
        assert speedups.install() >= 20
    finally:
        speedups.install()
    assert speedups.installed()


def test_remembered_verdicts_stay_bounded_and_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speedups, "_VERDICTS_MAX", 3)
    verdicts = speedups._Verdicts(re.compile("^ad-|share"))
    values = ["ad-top", "x", "share-bar", "nav", "ad-top", "y-ad-", "share"]
    assert [verdicts[v] for v in values] == [True, False, True, False, True, False, True]
    assert len(verdicts) <= 3


def test_invalid_xml_characters_are_found_where_the_regex_finds_them() -> None:
    chars = trafilatura.utils.INVALID_XML_CHARS
    assert isinstance(chars, speedups.InvalidXmlChars)  # tasks.extract installed it
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
    speedups.uninstall()
    try:
        assert trafilatura.utils.INVALID_XML_CHARS is regex
    finally:
        speedups.install()
    assert isinstance(trafilatura.utils.INVALID_XML_CHARS, speedups.InvalidXmlChars)
