"""RSS 2.0, Atom and RSS 1.0 (RDF) feeds: item links of an untrusted XML body."""

from __future__ import annotations

from urllib.parse import urljoin
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from newsflow.reasons import Reason
from tasks.discover_input import (
    DiscoveryParseError,
    absolute,
    local_name,
    prepare_xml,
    unique,
    xml_error,
)

_ATOM_NS = ("http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#")
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_RDF_ABOUT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
_FEEDBURNER_ORIG = "{http://rssnamespace.org/feedburner/ext/1.0}origLink"


def parse_feed(body: bytes, base_url: str) -> list[str]:
    """Item links of an RSS 2.0, Atom or RSS 1.0 (RDF) feed, absolute, in feed order."""
    data = prepare_xml(body)
    try:
        root = safe_et.fromstring(data)
    except (DefusedXmlException, ParseError) as exc:
        raise xml_error(exc) from None
    name, ns = local_name(root.tag), _ns(root.tag)
    if name == "rss":
        return unique(_rss_item_link(item, base_url) for item in root.iter("item"))
    if name == "feed" and (ns in _ATOM_NS or not ns):
        return _atom_links(root, base_url)
    if name == "RDF":
        items = (e for e in root.iter() if local_name(e.tag) == "item")
        return unique(_rdf_item_link(item, base_url) for item in items)
    if name in ("urlset", "sitemapindex"):
        raise DiscoveryParseError(Reason.NOT_A_FEED, f"<{name}> is a sitemap, not a feed")
    raise DiscoveryParseError(Reason.NOT_A_FEED, f"root element <{name}> is not rss, feed or RDF")


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _rss_item_link(item: Element, base: str) -> str | None:
    # FeedBurner rewrites <link> to its click tracker and keeps the real URL in origLink.
    orig = item.find(_FEEDBURNER_ORIG)
    if orig is not None and (url := absolute(orig.text, base)):
        return url
    link = item.find("link")
    if link is not None and (url := absolute(link.text, base)):
        return url
    guid = item.find("guid")
    if guid is not None and guid.get("isPermaLink", "true").strip().lower() != "false":
        return absolute(guid.text, base)
    return None


def _atom_links(root: Element, base: str) -> list[str]:
    feed_base = urljoin(base, root.get(_XML_BASE, ""))
    links: list[str | None] = []
    for entry in root:
        if local_name(entry.tag) != "entry":
            continue
        entry_base = urljoin(feed_base, entry.get(_XML_BASE, ""))
        alternates = [link for link in entry if local_name(link.tag) == "link"
                      and link.get("rel", "alternate").strip().lower() == "alternate"]
        # Several alternates (e.g. html and an AMP or JSON variant): the text/html one wins.
        alternates.sort(key=lambda link: link.get("type", "text/html") != "text/html")
        links.append(next((u for link in alternates
                           if (u := absolute(link.get("href"), entry_base))), None))
    return unique(links)


def _rdf_item_link(item: Element, base: str) -> str | None:
    link = next((e for e in item if local_name(e.tag) == "link"), None)
    if link is not None and (url := absolute(link.text, base)):
        return url
    return absolute(item.get(_RDF_ABOUT), base)
