"""Listing pages: the links of an HTML page that look like articles of the source."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urljoin, urlsplit

import lxml.etree
import lxml.html

from newsflow.reasons import Reason
from newsflow.types import Source
from newsflow.urls import normalize_url
from tasks.discover_input import MAX_XML_BYTES, DiscoveryParseError, absolute, unique

# Path segments of listing pages that lead to navigation, not to articles.
_SKIP_SEGMENTS = frozenset({
    "tag", "tags", "category", "categories", "topic", "topics", "author", "authors", "about",
    "about-us", "contact", "contact-us", "privacy", "privacy-policy", "terms", "terms-of-use",
    "terms-of-service", "search", "login", "log-in", "signin", "sign-in", "register", "account",
    "subscribe", "subscription", "subscriptions", "newsletter", "newsletters", "feed", "rss",
    "page", "wp-admin", "wp-content", "wp-json", "wp-login.php", "cdn-cgi", "sitemap",
    "video", "videos", "gallery", "galleries", "photos", "podcasts", "jobs", "careers",
    "advertise", "advertise-with-us", "ad-choices", "do-not-sell-my-personal-information",
    "do-not-sell-or-share-my-personal-information", "eeo-report", "fcc-applications",
    "closed-captioning", "meet-the-team", "work-for-us", "cookie-policy", "accessibility",
    "comments", "share", "print", "apps", "shop",
})
_SKIP_QUERY_KEYS = frozenset({"s", "q", "page", "paged", "replytocom", "share", "print"})
_SKIP_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".pdf", ".xml", ".rss",
                    ".json", ".mp3", ".mp4", ".m3u8", ".css", ".js", ".zip", ".ics")
_NAV_ANCESTORS = ("nav", "footer")
_DATE_IN_PATH = re.compile(r"/(?:19|20)\d{2}/(?:0?[1-9]|1[0-2])/|/(?:19|20)\d{2}-\d{2}-\d{2}\b"
                           r"|/(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\b")
_NUMERIC_ID = re.compile(r"(?:^|[-_])\d{5,}(?:[-_.]|$)")
_PAGE_SUFFIX = re.compile(r"\.(?:s?html?|php|aspx?)$")


def parse_listing(body: bytes, base_url: str, source: Source) -> list[str]:
    """Article-looking links of a listing page on the source's own domains, in page order."""
    if len(body) > MAX_XML_BYTES:
        raise DiscoveryParseError(Reason.TOO_LARGE, f"{len(body)} bytes > {MAX_XML_BYTES}")
    if not body.strip():
        raise DiscoveryParseError(Reason.NOT_HTML, "empty body")
    try:
        doc = lxml.html.document_fromstring(body)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise DiscoveryParseError(Reason.NOT_HTML, str(exc)) from None
    base_el = doc.find(".//base[@href]")
    base = urljoin(base_url, base_el.get("href", "")) if base_el is not None else base_url
    self_key = normalize_url(base_url)
    links: list[str | None] = []
    for anchor in doc.iter("a"):
        if _in_navigation(anchor):
            continue
        url = absolute(anchor.get("href"), base)
        if url and normalize_url(url) != self_key and looks_like_article(url, source):
            links.append(url)
    return unique(links)


def _in_navigation(element: lxml.html.HtmlElement) -> bool:
    for ancestor in element.iterancestors():
        if ancestor.tag in _NAV_ANCESTORS or ancestor.get("role") == "navigation":
            return True
    return False


def looks_like_article(url: str, source: Source) -> bool:
    """True for a URL on the source's domains whose path looks like one article."""
    parts = urlsplit(url)
    if not source.matches_host(parts.hostname or ""):
        return False
    segments = [s.lower() for s in parts.path.split("/") if s]
    if not segments or any(s in _SKIP_SEGMENTS for s in segments):
        return False
    if segments[-1].endswith(_SKIP_EXTENSIONS):
        return False
    if any(k.lower() in _SKIP_QUERY_KEYS for k, _ in parse_qsl(parts.query)):
        return False
    path = "/" + "/".join(segments) + "/"
    if _DATE_IN_PATH.search(path) or any(_NUMERIC_ID.search(s) for s in segments):
        return True
    slug = _PAGE_SUFFIX.sub("", segments[-1])
    words = [w for w in re.split(r"[-_]+", slug) if w]
    # A headline slug has several words; section names ("texas", "local-news") do not.
    return len(words) >= 4 or (len(words) >= 3 and len(slug) >= 20)
