"""Extraction with trafilatura: main text, metadata, canonical URL and the links in the body."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import lxml.html
import trafilatura

from newsflow.reasons import Reason
from newsflow.types import Article, Failure, RawPage
from newsflow.urls import article_id, host_of, normalize_url
from tasks import provenance, trafilatura_fast
from tasks.trafilatura_fast import Document

# Comments are not the article: include_comments=False scores better than trafilatura's
# defaults on the article-extraction benchmark (bench/extraction_f1.py, docs/performance.md).
# Metadata comes from trafilatura_fast.metadata, not from bare_extraction.
EXTRACT_OPTIONS: dict[str, Any] = {"include_comments": False, "with_metadata": False,
                                   "include_tables": True}
# Fast mode first: it skips the readability/jusText comparison, a large share of a page's CPU.
# Its failures look alike: a short text (the comparison would have found the article) or one
# block (the whole-page dump of trafilatura's last resort); those pages are extracted again in
# full mode. The threshold is the one that scored best on the benchmark (docs/performance.md).
FAST_MIN_CHARS = 500
MIN_WORDS = 5
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)
_NOT_HTML = ("application/pdf", "image/", "video/", "audio/", "application/zip",
             "application/octet-stream", "application/msword", "font/")
_BLOCKS = frozenset({"p", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "td", "dd",
                     "figcaption"})
_INLINE = frozenset({"span", "em", "strong", "b", "i", "u", "small", "sup", "sub", "mark", "cite"})


def _absolute(href: str, base: str) -> str | None:
    """href as a normalized absolute http(s) URL, or None for other schemes and garbage."""
    try:
        url = normalize_url(href, base)
    except ValueError:  # e.g. "http://[not-an-ip]" in real pages
        return None
    return url if url.startswith(("http://", "https://")) else None


def _fail(page: RawPage, reason: Reason, detail: str = "") -> Failure:
    return Failure(url=page.url, source=page.source, stage="extract", reason=reason, detail=detail,
                   status=page.status)


def decode_body(page: RawPage) -> str | bytes:
    """The body as text, trusting evidence over labels; bytes when only sniffing can tell.

    Servers mislabel charsets often. Bytes that decode as strict UTF-8 are UTF-8 whatever the
    header says (other encodings almost never form valid UTF-8 sequences). Otherwise the
    header's charset is used if the bytes decode under it; else trafilatura sniffs the bytes
    (meta charset, then detection).
    """
    try:
        return page.body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    m = _CHARSET.search(page.content_type or "")
    if m and m.group(1).lower().replace("-", "").replace("_", "") not in ("utf8", "utf"):
        try:
            return page.body.decode(m.group(1))
        except (LookupError, UnicodeDecodeError):  # unknown name, or the label is wrong
            pass
    return page.body


def looks_binary(page: RawPage) -> bool:
    """PDFs, images and other non-HTML bodies, by content type or magic bytes."""
    ctype = (page.content_type or "").lower()
    if ctype.startswith(_NOT_HTML):
        return True
    head = page.body[:8]
    return head.startswith((b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04"))


def _canonical(tree: lxml.html.HtmlElement, base: str) -> str | None:
    """rel=canonical, else og:url, made absolute and normalized."""
    for xpath in ('//link[@rel="canonical"]/@href', '//meta[@property="og:url"]/@content'):
        hits = tree.xpath(xpath)
        url = _absolute(str(hits[0]), base) if hits and str(hits[0]).strip() else None
        if url:
            return url
    return None


def _language(tree: lxml.html.HtmlElement) -> str | None:
    """The page's declared language (<html lang>, content-language, og:locale) as a short code."""
    for xpath in ("/html/@lang", '//meta[@http-equiv="content-language"]/@content',
                  '//meta[@property="og:locale"]/@content'):
        hits = tree.xpath(xpath)
        if hits:
            code = str(hits[0]).strip().replace("_", "-").split("-")[0].lower()
            if 2 <= len(code) <= 3 and code.isalpha():
                return code
    return None


def _anchors(tree: lxml.html.HtmlElement) -> list[tuple[str, str]]:
    """(raw href, text of the enclosing block) of every link, before trafilatura prunes the tree."""
    out = []
    # Keyed by the element itself: the dict keeps the proxy alive (an id() could be reused).
    block_text: dict[lxml.html.HtmlElement, str] = {}
    for a in tree.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            continue
        # The enclosing paragraph, through inline tags only: a link straight in a <div> is
        # navigation far more often than body text, and text_content() of big divs is costly.
        block = a.getparent()
        while block is not None and block.tag in _INLINE:
            block = block.getparent()
        if block is None or block.tag not in _BLOCKS:
            block = a
        if block not in block_text:
            block_text[block] = " ".join(block.text_content().split())
        out.append((href, block_text[block]))
    return out


def body_links(anchors: list[tuple[str, str]], text: str, base: str) -> tuple[str, ...]:
    """Links whose surrounding block made it into the extracted text (attribution links included)."""
    flat = " ".join(text.split())
    seen: dict[str, None] = {}
    # Many of a page's links share their block with another: each block is searched for once.
    kept: dict[str, bool] = {}
    for href, block in anchors:
        probe = block[:80]
        if probe not in kept:
            kept[probe] = bool(probe) and probe in flat
        # Normalize only the few links that survive: normalizing every link of a page was a
        # visible share of extract_page (docs/performance.md).
        if kept[probe] and (url := _absolute(href, base)):
            seen.setdefault(url, None)
    return tuple(seen)


def _published(doc: Document, fetched_at: datetime, timestamps: Sequence[str] = ()
               ) -> tuple[datetime | None, bool]:
    """The structured published date and whether it can be trusted (not in the future).

    htmldate gives a day; the page's own timestamp on that day (tasks/provenance.py) adds the
    time of day and zone. A timestamp on another day is not used: htmldate weighed the
    candidates, and the day it chose stays (at midnight UTC, as before).
    """
    if not doc.date:
        return None, False
    try:
        when = datetime.fromisoformat(doc.date).replace(tzinfo=UTC)
    except ValueError:
        return None, False
    when = provenance.precise_time(when.date(), timestamps) or when
    return when, when <= fetched_at + timedelta(days=1)


def main_text(tree: lxml.html.HtmlElement, url: str) -> Document | None:
    """trafilatura's main text, in fast mode unless its result looks like a fast-mode failure."""
    doc = trafilatura.bare_extraction(tree, url=url, fast=True, **EXTRACT_OPTIONS)
    if isinstance(doc, Document) and doc.text and len(doc.text) >= FAST_MIN_CHARS \
            and doc.body is not None and len(doc.body) > 1:
        return doc
    full = trafilatura.bare_extraction(tree, url=url, **EXTRACT_OPTIONS)
    return full if isinstance(full, Document) else None


def extract_page(page: RawPage) -> Article | Failure:
    """One page to an Article, or a Failure saying why not; never raises for bad input."""
    if not page.body.strip():
        return _fail(page, Reason.EMPTY_BODY)
    if looks_binary(page):
        return _fail(page, Reason.NOT_HTML, page.content_type or "binary body")
    try:
        tree = trafilatura.load_html(decode_body(page))
    except Exception as exc:  # lxml raises several types on garbage input
        return _fail(page, Reason.PARSE_ERROR, str(exc)[:300])
    if tree is None:
        return _fail(page, Reason.NOT_HTML, "no HTML document found")
    base = page.final_url or page.url
    canonical = _canonical(tree, base)
    language = _language(tree)
    anchors = _anchors(tree)
    try:
        cues = provenance.scan(tree, (page.url, base))  # before trafilatura prunes the tree
        doc = main_text(tree, base)  # on a copy of the tree
        meta = trafilatura_fast.metadata(tree, base)  # last: it may prune the tree
    except Exception as exc:  # trafilatura can fail deep inside lxml on odd trees
        return _fail(page, Reason.EXTRACT_ERROR, f"{type(exc).__name__}: {exc}"[:300])
    if not isinstance(doc, Document) or not doc.text or len(doc.text.split()) < MIN_WORDS:
        return _fail(page, Reason.NO_TEXT, "trafilatura found no main text")
    published, trusted = _published(meta, page.fetched_at, cues.timestamps)
    # The page's own names: its copyright lines name its own publisher, not a credited one.
    # The registry's publisher of the source is compared when the article is stored.
    credited = provenance.foreign_publisher(
        provenance.copyright_names(doc.text),
        (meta.sitename, page.source, provenance.site_of(host_of(base)).split(".")[0]))
    return Article(
        article_id=article_id(page.url), url=page.url, source=page.source,
        fetched_at=page.fetched_at, text=doc.text, raw_text=doc.text,
        canonical_url=canonical, title=meta.title, author=meta.author, published_at=published,
        date_trusted=trusted, sitename=meta.sitename, language=meta.language or language,
        links=body_links(anchors, doc.text, base),
        attribution_url=_absolute(cues.attribution_href, base) if cues.attribution_href else None,
        credited_publisher=credited,
    )


def extract_pages(pages: Sequence[RawPage]) -> list[Article | Failure]:
    """Extract a batch; order kept."""
    return [extract_page(p) for p in pages]
