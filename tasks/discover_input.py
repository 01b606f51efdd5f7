"""Shared by the discovery parsers: the parse error, the size cap, XML preparation, links."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from urllib.parse import urldefrag, urljoin, urlsplit

from defusedxml import DefusedXmlException

from newsflow.errors import NewsflowError
from newsflow.reasons import Reason

# The sitemaps protocol caps a sitemap at 50 MB uncompressed; nothing legitimate is bigger,
# and the cap bounds memory for a gzip bomb served as sitemap.xml.gz.
MAX_XML_BYTES = 50 * 1024 * 1024
_DETAIL_CHARS = 300
_XML_ROOTS = (b"<?xml", b"<rss", b"<feed", b"<rdf:rdf", b"<urlset", b"<sitemapindex")


class DiscoveryParseError(NewsflowError):
    """A feed, sitemap or listing body that yields no URLs, and the Reason why."""

    def __init__(self, reason: Reason, detail: str = ""):
        self.reason, self.detail = reason, detail[:_DETAIL_CHARS]
        super().__init__(f"{reason}: {self.detail}" if self.detail else reason)


def prepare_xml(body: bytes) -> bytes:
    """Gunzip (capped) if gzip, refuse empty or HTML bodies, strip a BOM and leading blanks."""
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body)
    if len(body) > MAX_XML_BYTES:
        raise DiscoveryParseError(Reason.TOO_LARGE, f"{len(body)} bytes > {MAX_XML_BYTES}")
    # Stray blank lines before <?xml (a classic WordPress plugin bug) make expat refuse the feed.
    data = body.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if not data:
        raise DiscoveryParseError(Reason.NOT_XML, "empty body")
    head = data[:512].lower()
    # An HTML page (error page, bot challenge, the site's home page) where XML was expected;
    # `<html` after a comment or blanks counts too, unless a feed/sitemap root came first.
    if head.startswith((b"<!doctype html", b"<html")) or (
            b"<html" in head and not any(root in head.split(b"<html", 1)[0]
                                         for root in _XML_ROOTS)):
        raise DiscoveryParseError(Reason.NOT_XML, "an HTML page, not XML")
    return data


def _gunzip(body: bytes) -> bytes:
    """Decompress a gzip body, refusing more than MAX_XML_BYTES of output (gzip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_XML_BYTES + 1)
    except zlib.error as exc:
        raise DiscoveryParseError(Reason.NOT_XML, f"corrupt gzip: {exc}") from None
    if len(out) > MAX_XML_BYTES or inflater.unconsumed_tail:
        raise DiscoveryParseError(Reason.TOO_LARGE, f"gzip body inflates beyond {MAX_XML_BYTES} bytes")
    return out


def xml_error(exc: Exception) -> DiscoveryParseError:
    """The parse error of a body defusedxml or expat refused."""
    if isinstance(exc, DefusedXmlException):
        # Entity declarations (billion laughs, quadratic blowup) and external entities (XXE)
        # are refused before any expansion, so a bomb fails at once.
        return DiscoveryParseError(Reason.XML_BOMB, f"{type(exc).__name__}: {exc}")
    return DiscoveryParseError(Reason.NOT_XML, str(exc))


def local_name(tag: object) -> str:
    """Local name of an ElementTree tag: '{ns}item' -> 'item' (comments/PIs -> '')."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def absolute(href: str | None, base: str) -> str | None:
    """href resolved against base without its fragment, or None unless it is http(s)."""
    if not href or not href.strip():
        return None
    try:
        url = urldefrag(urljoin(base, href.strip())).url
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:  # hostile feeds carry "http://[::1/x" or "http://host:99999/"
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def unique(urls: Iterable[str | None]) -> list[str]:
    """The URLs in order, each once, Nones left out."""
    return list(dict.fromkeys(u for u in urls if u))
