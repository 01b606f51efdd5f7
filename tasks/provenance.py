"""Provenance cues of a page: who it credits, and when it was published to the minute.

- the link crediting another site's article ("Reference", "Source:", "Via", "Originally
  published at", "The post ... appeared first on"), which aggregators put outside the text
  trafilatura keeps;
- the publishers named by copyright lines in the article text ("(c) 2023 Nexstar Media Inc."):
  on an aggregator page they credit the original's publisher;
- the structured publication timestamps (meta tags, JSON-LD datePublished, <time datetime>),
  whose time of day and zone trafilatura's day-only date drops.

Pure functions; tasks/extract.py calls scan() before trafilatura prunes the tree, in one pass
over the <a>, <meta>, <time> and <script> elements (lxml filters the tags in C).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import lxml.html

from newsflow.publishers import same_publisher

_TIMESTAMP_META = frozenset({
    "article:published_time", "og:published_time", "og:article:published_time",
    "datepublished", "pubdate", "publishdate", "parsely-pub-date", "sailthru.date",
    "dc.date.issued"})
_INLINE = frozenset({"span", "em", "strong", "b", "i", "u", "small", "sup", "sub", "mark", "cite",
                     "font", "abbr", "label", "code"})
# Page chrome whose links are the site's own (menus, related posts, the footer) or a photo's
# (captions), never the article's provenance.
_CHROME_TAGS = frozenset({"nav", "header", "footer", "aside", "figure", "figcaption"})

# The text right before a crediting link, all of it from the start of its line or block.
_LEAD_CUE = re.compile(
    r"(?:(?:this|the)\s+(?:article|story|post|piece|report)\s+(?:was\s+|is\s+)?)?"
    r"(?:references?|sources?|via|h/t|hat\s+tip"
    r"|(?:originally|first)\s+(?:published|appeared|posted|reported)(?:\s+(?:at|on|in|by))?"
    r"|read\s+more\s+(?:at|on)"
    r"|read\s+(?:the\s+)?(?:full|original|complete)\s+(?:article|story)(?:\s+(?:at|on|here))?"
    r"|republished\s+(?:from|with\s+permission\s+(?:from|of)))"
    r"\s*[:\-–—]?", re.I)
# A link whose own text says it is the source ("Reference", "Original article").
_LINK_CUE = re.compile(
    r"(?:references?|sources?|source\s+link"
    r"|original(?:\s+(?:article|story|source|post|link))?"
    r"|(?:read|view)\s+(?:the\s+)?(?:original|full)(?:\s+(?:article|story))?(?:\s+here)?"
    r"|read\s+more\s+(?:at|on)\s+.{1,60})"
    r"[\s:.…»>]*", re.I)
# Lead-ins longer than this are body sentences, not a credit line.
MAX_LEAD = 80

# "(c) 2023 Nexstar Media Inc. All rights reserved", "Copyright © 1998 - 2023 The Hill |":
# the name runs from after the year(s) to the first of "All rights", "|", ", ", a sentence end
# or the end of the text.
_COPYRIGHT = re.compile(
    r"(?:©|\([cC]\)|\b[Cc]opyright\b|\bCOPYRIGHT\b)(?:\s*(?:©|\([cC]\)))?\s*"
    r"(?:19|20)\d\d(?:\s*[-–—/]\s*(?:(?:19|20)\d\d|[Pp]resent))?\s*,?\s*(?:[Bb]y\s+)?"
    r"(?P<name>[^\W\d_][^|\n©]{0,80}?)"
    r"(?=\s*[|\n©]|[.,;]?\s+(?i:all\s+rights)\b|[,;]\s|\.\s+[A-Z]|[.,;]?\s*$)")
# Legal forms written with their own period, kept in the name as written ("Nexstar Media Inc.").
_ABBREVIATED = re.compile(r"\b(?:inc|ltd|co|corp|bros|s\.a|n\.v|l\.l\.c|jr)$", re.I)
MAX_NAME_WORDS = 8
_COPYRIGHT_HINT = re.compile(r"©|\([cC]\)|[Cc]opyright|COPYRIGHT")

_DATE_PUBLISHED = re.compile(r'"datePublished"\s*:\s*"([^"]{10,40})"')


@dataclass(kw_only=True)
class Cues:
    """What scan() found: the crediting link's raw href and the timestamps, best first."""

    attribution_href: str | None = None
    timestamps: list[str] = field(default_factory=list)


def site_of(host: str) -> str:
    """The registrable part of a hostname, roughly: www.kxan.com -> kxan.com, a.bbc.co.uk -> bbc.co.uk."""
    labels = host.lower().rstrip(".").split(".")
    two_part = len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in (
        "co", "com", "org", "net", "gov", "ac", "edu", "ne", "or")
    return ".".join(labels[-3:] if two_part else labels[-2:])


def _in_chrome(el: lxml.html.HtmlElement) -> bool:
    """Whether el sits in page chrome (nav, header, footer, aside, captions)."""
    return any(node.tag in _CHROME_TAGS for node in el.iterancestors())


def _lead_in(a: lxml.html.HtmlElement) -> str | None:
    """The text before a in its line or block, or None when longer than MAX_LEAD."""
    parts: list[str] = []  # backwards: a tail, then the text of the element it follows
    size, node = 0, a
    while True:
        stopped = False
        for sib in node.itersiblings(preceding=True):
            parts.append(sib.tail or "")
            if isinstance(sib.tag, str):  # comments and processing instructions: tail only
                if sib.tag not in _INLINE:  # a block or <br> before: the line starts after it
                    stopped = True
                    break
                parts.append(sib.text_content())
            size += len(parts[-1]) + len(sib.tail or "")
            if size > MAX_LEAD * 4:
                return None
        parent = node.getparent()
        if stopped or parent is None:
            break
        parts.append(parent.text or "")
        if parent.tag not in _INLINE:
            break
        node = parent
    lead = " ".join("".join(reversed(parts)).split())
    return lead if len(lead) <= MAX_LEAD else None


def _host_and_path(href: str) -> tuple[str, str]:
    """Host and path of an absolute or scheme-relative href (string slicing: urlsplit on every
    link of a page cost more than the rest of the scan)."""
    rest = href.split("//", 1)[1] if "//" in href else ""
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0),
              default=len(rest))
    host = rest[:cut].rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return host, rest[cut:].split("?", 1)[0].split("#", 1)[0]


def _credits(a: lxml.html.HtmlElement, href: str, own_sites: frozenset[str]) -> bool:
    """Whether link a (to href, absolute) credits another site's article."""
    host, path = _host_and_path(href)
    if not host or site_of(host) in own_sites or path in ("", "/"):
        return False
    lead = _lead_in(a)
    if lead is None:
        return False
    text = " ".join(a.text_content().split())
    cue = (_LEAD_CUE.fullmatch(lead) is not None
           or (not lead or lead.endswith(":")) and _LINK_CUE.fullmatch(text) is not None
           or lead.lower() == "the post" and (a.tail or "").strip().lower().startswith(
               "appeared first on"))
    return cue and not _in_chrome(a)


def copyright_name(line: str) -> str | None:
    """The publisher a copyright line names, as written ("Nexstar Media Inc."), or None."""
    m = _COPYRIGHT.search(" ".join(line.split()))
    if not m:
        return None
    name = m["name"].strip()
    rest = m.string[m.end("name"):]
    if rest.startswith(".") and _ABBREVIATED.search(name):
        name += "."
    if len(name.split()) > MAX_NAME_WORDS or name.lower().startswith("all rights"):
        return None
    if not name[0].isupper() and not re.fullmatch(r"[\w-]+(?:\.[\w-]+)+", name):
        return None  # a lower-case phrase, unless a domain name ("vigourtimes.com")
    return name


def copyright_names(text: str) -> list[str]:
    """The publishers the copyright lines of text name, in order, each once.

    Read from the article text trafilatura keeps, not from the whole page: a site's own footer
    line is left out there, and the line an aggregator copies with the article stays in.
    """
    if not _COPYRIGHT_HINT.search(text):
        return []
    names: list[str] = []
    for line in text.splitlines():
        if _COPYRIGHT_HINT.search(line) and (name := copyright_name(line)) and name not in names:
            names.append(name)
    return names


def scan(tree: lxml.html.HtmlElement, page_urls: Iterable[str]) -> Cues:
    """The page's crediting link and timestamps; page_urls are its own URLs (their site is not foreign)."""
    own = frozenset(site for u in page_urls if (site := site_of(_host_and_path(u)[0])))
    # "//kxan.com" or ".kxan.com" in a link: the page's own site ("x.com" alone is in "max.com").
    own_marks = tuple(mark for site in own for mark in ("//" + site, "." + site))
    cues = Cues()
    stamps: tuple[list[str], list[str], list[str]] = ([], [], [])  # meta, JSON-LD, <time>
    for el in tree.iter("a", "meta", "time", "script"):
        tag = el.tag
        if tag == "a":
            if cues.attribution_href is not None:
                continue
            href = el.get("href")
            # Most links are the page's own: a substring test drops them before any parsing.
            if not href or not href.lstrip().startswith(("http", "//")) \
                    or any(mark in href for mark in own_marks):
                continue
            if _credits(el, href.strip(), own):
                cues.attribution_href = href.strip()
        elif tag == "meta":
            key = el.get("property") or el.get("name") or el.get("itemprop")
            if key and key.lower() in _TIMESTAMP_META and (content := el.get("content")):
                stamps[0].append(content)
        elif tag == "script":
            if el.get("type") == "application/ld+json" and el.text:
                stamps[1].extend(_DATE_PUBLISHED.findall(el.text))
        elif stamp := el.get("datetime"):
            stamps[2].append(stamp)
    cues.timestamps = [s.strip() for group in stamps for s in group if s.strip()]
    return cues


def foreign_publisher(names: Iterable[str], own_names: Iterable[str | None]) -> str | None:
    """The first copyright name that is none of the page's own names (site name, source, host)."""
    own = [n for n in own_names if n]
    return next((n for n in names if not any(same_publisher(n, o) for o in own)), None)


def precise_time(day: date, timestamps: Iterable[str]) -> datetime | None:
    """The first timestamp with a time of day on day (in its own zone), in UTC.

    Timestamps with a zone come first: a zoneless one (sailthru.date, some JSON-LD) is usually
    the newsroom's local time. It is read as UTC only when the page gives no zoned time that day.
    """
    zoneless: list[datetime] = []
    for raw in timestamps:
        if len(raw) <= 10 or ":" not in raw:  # a day only
            continue
        try:
            when = datetime.fromisoformat(raw.replace(" ", "T", 1))
        except ValueError:
            continue
        if when.date() != day:
            continue
        if when.tzinfo is not None:
            return when.astimezone(UTC)
        zoneless.append(when)
    return zoneless[0].replace(tzinfo=UTC) if zoneless else None
