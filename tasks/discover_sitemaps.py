"""Sitemaps: article URLs of a urlset, child sitemaps of an index, or a plain-text list."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

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


@dataclass(kw_only=True)
class SitemapResult:
    """Article URLs of a urlset, child sitemaps of a sitemap index (newest lastmod first)."""

    urls: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)



def parse_sitemap(body: bytes, base_url: str) -> SitemapResult:
    """URLs of a urlset (plain or Google News) or children of a sitemap index; gzip is fine."""
    data = prepare_xml(body)
    if not data.startswith(b"<"):
        return _text_sitemap(data, base_url)
    result = SitemapResult()
    children: list[tuple[str, str]] = []  # (lastmod, url)
    root_name = ""
    depth = 0
    try:
        # iterparse + clear keeps memory flat however many URLs a sitemap lists.
        for event, elem in safe_et.iterparse(io.BytesIO(data), events=("start", "end")):
            if event == "start":
                depth += 1
                if depth == 1:
                    root_name = local_name(elem.tag)
                    if root_name not in ("urlset", "sitemapindex"):
                        raise DiscoveryParseError(
                            Reason.NOT_A_SITEMAP,
                            f"root element <{root_name}> is not urlset or sitemapindex")
                continue
            depth -= 1
            if depth != 1:
                continue
            # Only <loc> directly under <url>/<sitemap>: image:loc and video:loc sit deeper.
            fields = {local_name(child.tag): (child.text or "").strip() for child in elem}
            url = absolute(fields.get("loc"), base_url)
            if url and root_name == "urlset" and local_name(elem.tag) == "url":
                result.urls.append(url)
            elif url and root_name == "sitemapindex" and local_name(elem.tag) == "sitemap":
                children.append((fields.get("lastmod", ""), url))
            elem.clear()
    except (DefusedXmlException, ParseError) as exc:
        raise xml_error(exc) from None
    result.urls = unique(result.urls)
    # Newest first so the per-run child cap keeps the sitemaps holding recent articles;
    # ISO 8601 lastmod strings sort chronologically, and undated children go last.
    children.sort(key=lambda c: c[0], reverse=True)
    result.children = unique(url for _, url in children)
    return result


def _text_sitemap(data: bytes, base_url: str) -> SitemapResult:
    """The protocol's plain-text form: one absolute URL per line."""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    urls = [absolute(line, base_url) for line in lines]
    if not lines or not all(u and u == line for u, line in zip(urls, lines, strict=True)):
        raise DiscoveryParseError(Reason.NOT_XML, "neither XML nor a text sitemap of URLs")
    return SitemapResult(urls=unique(urls))
