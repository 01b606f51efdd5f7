"""trafilatura with the same output for less CPU: the one module that touches its private internals.

install() puts in place, for the trafilatura versions in COVERED only:
1. its attribute-matching XPath expressions run in Python (tasks/xpath_subset.py translates
   them, tasks/xpath_match.py runs them): libxml2 calls back into Python for every `re:test`
   of every candidate element, the largest part of extract_page's CPU;
2. its HTML parser's element classes looked up in C (lxml.html does it in a Python method,
   once per element proxy);
3. a faster scan of each page for the characters XML forbids (InvalidXmlChars);
4. page metadata from trafilatura's own steps minus what newsflow drops (metadata()).

Anything else runs trafilatura as shipped, metadata from its public extract_metadata: another
version (with one logged warning: its internals may have moved), $NEWSFLOW_STOCK_TRAFILATURA=1,
or a process that never called install(). Nothing happens on import: the CLI's start-up and the
extraction workers call install() (tasks/extract_pool.py). Private names are imported inside the
functions that use them, which run only on a covered version, so that an uncovered one still
imports this module and falls back. tests/extract/test_trafilatura_fast.py and
test_lean_extraction.py compare every piece with stock on the recorded pages; what it saves is
in docs/performance.md.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from html import unescape
from typing import Any

import lxml.html
import trafilatura
from htmldate import find_date
from lxml import etree

# The type bare_extraction and extract_metadata return; trafilatura does not export it.
from trafilatura.settings import Document

from newsflow.settings import settings
from tasks.xpath_match import Translated
from tasks.xpath_subset import NotTranslated, translate, worth_translating

# The versions whose internals the tests compare with stock, and how many of its expressions
# install() translates on each: tests/extract/test_trafilatura_fast.py checks both.
COVERED = {"2.3.1": 25}

LOG = logging.getLogger(__name__)

# Structured dates only (meta tags, JSON-LD, <time>): the extensive search also reads
# "(c) 2023" lines and URL fragments, which aggregators make wrong. max_date is far ahead so a
# future date is seen, and flagged untrusted, instead of silently dropped.
MAX_DATE = "2099-12-31"
DATE_OPTIONS: dict[str, Any] = {"original_date": True, "extensive_search": False, "max_date": MAX_DATE}
# trafilatura reads broken JSON-LD with regexes whose cost grows with the square of its size
# (docs/performance.md). The author and title it looks for sit at the start of such blocks.
BROKEN_JSON_CHARS = 20_000
_JSON_LD = './/script[@type="application/ld+json" or @type="application/settings+json"]'
# What trafilatura's reader of parsed JSON-LD raises on a block of unexpected shape (a string
# where it expects an object, an empty list, nesting too deep for json.loads).
_JSON_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, RecursionError)
_SURROGATES = re.compile("[\ud800-\udfff]")
# JSON_MINIFY's tokens kept: a string, a run of other characters, or a quote opening no string.
_JSON_KEPT = re.compile(r'"(?:\\.|[^"\\])*"|[^"\s]+|"')

_installed: int | None = None  # expressions translated, while installed
_warned = False


def covered() -> bool:
    """Whether the running trafilatura is one whose internals the tests cover."""
    return trafilatura.__version__ in COVERED


def install(*, quiet: bool = False) -> int:
    """Put the fast path in place in this process, once; the number of expressions translated
    (0: trafilatura stays as shipped, by request or because this version is not covered)."""
    global _installed, _warned
    if _installed is not None:
        return _installed
    if settings().stock_trafilatura:
        return 0
    if not covered():
        if not (quiet or _warned):
            _warned = True
            LOG.warning("trafilatura %s is not a version newsflow's fast path covers (%s): running "
                        "it as shipped, stock metadata included", trafilatura.__version__,
                        ", ".join(sorted(COVERED)))
        return 0
    from trafilatura import utils

    done: dict[int, Any] = {}  # one translation per expression, wherever it is held
    for holder, key in slots():
        item = holder[key]
        if isinstance(item, etree.XPath) and worth_translating(item):
            if id(item) not in done:
                try:
                    done[id(item)] = translate(item)
                except NotTranslated:
                    done[id(item)] = item
            holder[key] = done[id(item)]
    if (lookup := _class_lookup()) is not None:
        utils.HTML_PARSER.set_element_class_lookup(lookup)
    chars = utils.INVALID_XML_CHARS
    if isinstance(chars, re.Pattern) and chars.pattern == InvalidXmlChars.PATTERN:
        utils.INVALID_XML_CHARS = InvalidXmlChars(chars)  # type: ignore[assignment]  # duck-typed: repair_faulty_html only calls .sub
    _installed = len({id(holder[key]) for holder, key in slots() if isinstance(holder[key], Translated)})
    return _installed


def uninstall() -> None:
    """trafilatura as shipped again, metadata included (tests and benchmarks compare both)."""
    global _installed
    if _installed is None:
        return
    from trafilatura import utils

    for holder, key in slots():
        if isinstance(holder[key], Translated):
            holder[key] = holder[key].original
    utils.HTML_PARSER.set_element_class_lookup(lxml.html.HtmlElementClassLookup())
    if isinstance(chars := utils.INVALID_XML_CHARS, InvalidXmlChars):
        utils.INVALID_XML_CHARS = chars.original
    _installed = None


def installed() -> bool:
    """Whether trafilatura runs with the fast path in this process."""
    return _installed is not None


def slots() -> Iterator[tuple[Any, int | str]]:
    """Where trafilatura keeps its expressions, as (holder, key): the items of trafilatura.xpaths'
    lists (its modules import the lists by name, so replacing an item reaches every caller) and
    module constants such as BASIC_CLEAN_XPATH, in each trafilatura module that imported them."""
    from trafilatura import xpaths

    for value in vars(xpaths).values():
        if isinstance(value, list):
            yield from ((value, i) for i, x in enumerate(value) if isinstance(x, etree.XPath | Translated))
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "trafilatura":
            namespace = vars(module)
            yield from ((namespace, k) for k, x in list(namespace.items())
                        if isinstance(x, etree.XPath | Translated))


def _class_lookup() -> etree.ElementNamespaceClassLookup | None:
    """lxml.html's element classes (HtmlElement, FormElement, ...) as a C-level registry; None
    if lxml no longer keeps its tag -> class table where this reads it (a private attribute:
    trafilatura then keeps lxml.html's own lookup, slower, same classes)."""
    classes = getattr(lxml.html.HtmlElementClassLookup(), "_element_classes", None)
    if not isinstance(classes, dict):
        return None
    lookup = etree.ElementNamespaceClassLookup(etree.ElementDefaultClassLookup(
        element=lxml.html.HtmlElement, comment=lxml.html.HtmlComment,
        pi=lxml.html.HtmlProcessingInstruction, entity=lxml.html.HtmlEntity))
    registry = lookup.get_namespace(None)
    # The Python lookup lowercases the tag first; libxml2's HTML parser already has.
    for tag, cls in classes.items():
        registry[tag] = cls
    return lookup


class InvalidXmlChars:
    """trafilatura's INVALID_XML_CHARS (repair_faulty_html removes them before parsing) with a
    fast path for text that has none, nearly every page. Its control characters are looked for
    in its UTF-8 bytes, in one C pass (below 0x80 a UTF-8 byte only ever encodes that
    character, lone surrogates included), U+FFFE and U+FFFF in the text itself."""

    PATTERN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"  # the pattern this stands for
    _CONTROL = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])

    def __init__(self, original: re.Pattern[str]):
        self.original = original
        self.pattern = original.pattern

    def absent(self, text: str) -> bool:
        """Whether text has none of the characters."""
        data = text.encode("utf-8", "surrogatepass")
        return (len(data.translate(None, self._CONTROL)) == len(data)
                and "\ufffe" not in text and "\uffff" not in text)

    def sub(self, repl: str, string: str, count: int = 0) -> str:
        if isinstance(string, str) and self.absent(string):
            return string
        return self.original.sub(repl, string, count)

    def __getattr__(self, name: str) -> Any:  # search, findall...: the pattern's own
        return getattr(self.original, name)


def metadata(tree: lxml.html.HtmlElement, url: str) -> Document:
    """Title, author, date, URL and site name of a page; may PRUNE the tree, so call it after
    everything else that reads it. page_metadata when installed, else trafilatura's own."""
    if _installed is not None:
        return page_metadata(tree, url)
    return trafilatura.extract_metadata(tree, url, dict(DATE_OPTIONS))


def _normalize_json(text: str) -> str:
    """trafilatura's normalize_json, dropping lone surrogates with a regex instead of a per-character
    generator (costly on pages with big blocks: docs/performance.md)."""
    from trafilatura.json_metadata import JSON_UNICODE_REPLACE
    from trafilatura.utils import HTML_STRIP_TAGS, trim

    if "\\" in text:
        text = text.replace("\\n", "").replace("\\r", "").replace("\\t", "")
        text = JSON_UNICODE_REPLACE.sub(lambda m: chr(int(m[1], 16)), text)
        text = unescape(_SURROGATES.sub("", text))
    return trim(HTML_STRIP_TAGS.sub("", text))


def _minify_json(text: str) -> str:
    """trafilatura's JSON_MINIFY.sub(r"\\1", text), whitespace outside strings dropped: the same
    text, from one match per token instead of a template expansion per character."""
    return "".join(_JSON_KEPT.findall(text))


def _meta_json(tree: lxml.html.HtmlElement, doc: Document) -> Document:
    """trafilatura's extract_meta_json, with broken JSON read only up to BROKEN_JSON_CHARS.

    trafilatura guards its call with `except Exception` (its reader of parsed JSON-LD fails on
    odd shapes); here only the errors such a block raises are caught, so that a change of
    trafilatura's internals fails loudly instead of silently dropping metadata.
    """
    from trafilatura.json_metadata import extract_json, extract_json_parse_error

    for elem in tree.xpath(_JSON_LD):
        if not elem.text:
            continue
        text = _normalize_json(_minify_json(elem.text))
        try:
            data = json.loads(text, strict=False)
        except json.JSONDecodeError:
            doc = extract_json_parse_error(text[:BROKEN_JSON_CHARS], doc)
            continue
        except RecursionError:  # nested too deep to parse: nothing trafilatura would read either
            return doc
        try:
            doc = extract_json(data, doc)
        except _JSON_SHAPE_ERRORS:  # trafilatura stops at the first such block too
            return doc
    return doc


def _metainfo(tree: lxml.html.HtmlElement, expressions: list[Any], len_limit: int) -> str | None:
    """trafilatura's extract_metainfo, reading no element's text past len_limit characters.

    It joins the whole text of every candidate, and author candidates can be big containers;
    trimming never makes a text shorter than its non-blank characters, so stopping there
    rejects exactly what trafilatura rejects.
    """
    from trafilatura.utils import trim

    for expression in expressions:
        for elem in expression(tree):
            parts, solid = [], 0
            for piece in elem.itertext():
                parts.append(piece)
                solid += len(piece) - piece.count(" ") - piece.count("\n") - piece.count("\t")
                if solid >= len_limit:
                    break
            else:
                content = trim(" ".join(parts))
                if content and 2 < len(content) < len_limit:
                    return content
    return None


def _byline(tree: lxml.html.HtmlElement) -> str | None:
    """The author named in the page's HTML (trafilatura's extract_author); PRUNES the tree.

    trafilatura prunes a deep copy of the tree first; pruning the caller's tree saves that copy,
    so this runs last, when nothing reads the tree any more.
    """
    from trafilatura.htmlprocessing import prune_unwanted_nodes
    from trafilatura.json_metadata import normalize_authors
    from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS

    author = _metainfo(prune_unwanted_nodes(tree, AUTHOR_DISCARD_XPATHS), AUTHOR_XPATHS, 120)
    return normalize_authors(None, author) if author else None


def page_metadata(tree: lxml.html.HtmlElement, url: str) -> Document:
    """Title, author, date, URL and site name: trafilatura's extract_metadata, minus what we drop.

    trafilatura's extract_metadata also searches categories, tags and a licence, which newsflow
    does not store: a large share of its cost. The steps below are its own, so the fields we keep
    are the same; the byline search moved last because it prunes the tree.
    """
    from trafilatura.metadata import META_URL, examine_meta, extract_sitename, extract_title, extract_url

    doc = examine_meta(tree)
    if doc.author and " " not in doc.author:  # a lone handle, not a name (as trafilatura does)
        doc.author = None
    doc = _meta_json(tree, doc)
    doc.title = doc.title or extract_title(tree)
    doc.url = doc.url or extract_url(tree, url)
    doc.date = find_date(tree, url=doc.url, **DATE_OPTIONS)
    doc.sitename = doc.sitename or extract_sitename(tree)
    if doc.sitename:
        doc.sitename = doc.sitename.lstrip("@")
        if "." not in doc.sitename and doc.sitename[:1].islower():  # "9to5Mac" stays
            doc.sitename = doc.sitename.title()
    elif doc.url and (m := META_URL.match(doc.url)):
        doc.sitename = m[1]
    doc.author = doc.author or _byline(tree)
    doc.clean_and_trim()  # entities, whitespace, length caps: trafilatura's last step too
    return doc
