"""Discovery: article URLs from feeds, sitemaps and listing pages, robust to hostile input."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qsl, urldefrag, urljoin, urlsplit
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
import lxml.etree
import lxml.html
from defusedxml import DefusedXmlException
from prefect import task
from prefect.cache_policies import NO_CACHE

from newsflow.errors import NewsflowError
from newsflow.types import Candidate, Failure, FetchSettings, Registry, Source
from newsflow.urls import normalize_url

if TYPE_CHECKING:
    from tasks.fetch import Fetcher

log = logging.getLogger(__name__)

# The sitemaps protocol caps a sitemap at 50 MB uncompressed; nothing legitimate is bigger,
# and the cap bounds memory for a gzip bomb served as sitemap.xml.gz.
MAX_XML_BYTES = 50 * 1024 * 1024
MAX_SITEMAP_DEPTH = 3  # index -> index -> index -> urlset hops followed below a configured sitemap
MAX_SITEMAP_CHILDREN = 50  # child sitemaps fetched per source per run
_DETAIL_CHARS = 300

_ATOM_NS = ("http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#")
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_RDF_ABOUT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
_XML_ROOTS = (b"<?xml", b"<rss", b"<feed", b"<rdf:rdf", b"<urlset", b"<sitemapindex")
_FEEDBURNER_ORIG = "{http://rssnamespace.org/feedburner/ext/1.0}origLink"

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


_T = TypeVar("_T")

class DiscoveryParseError(NewsflowError):
    """A feed, sitemap or listing body that yields no URLs: reason is a short label."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail[:_DETAIL_CHARS]
        super().__init__(f"{reason}: {self.detail}" if self.detail else reason)


@dataclass(kw_only=True)
class SitemapResult:
    """Article URLs of a urlset, child sitemaps of a sitemap index (newest lastmod first)."""

    urls: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class DiscoveryResult:
    """What discovering one source produced; validators are to be stored for the next run."""

    source: str
    candidates: list[Candidate] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    not_modified: list[str] = field(default_factory=list)  # feed/sitemap/page URLs unchanged
    # url -> (etag, last_modified, body_sha256) of every feed, sitemap and page seen this run
    validators: dict[str, tuple[str | None, str | None, str | None]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Body preparation shared by the XML parsers


def _prepare_xml(body: bytes) -> bytes:
    """Gunzip (capped) if gzip, refuse empty or HTML bodies, strip a BOM and leading blanks."""
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body)
    if len(body) > MAX_XML_BYTES:
        raise DiscoveryParseError("too_large", f"{len(body)} bytes > {MAX_XML_BYTES}")
    # Stray blank lines before <?xml (a classic WordPress plugin bug) make expat refuse the feed.
    data = body.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if not data:
        raise DiscoveryParseError("not_xml", "empty body")
    head = data[:512].lower()
    # An HTML page (error page, bot challenge, the site's home page) where XML was expected;
    # `<html` after a comment or blanks counts too, unless a feed/sitemap root came first.
    if head.startswith((b"<!doctype html", b"<html")) or (
            b"<html" in head and not any(root in head.split(b"<html", 1)[0]
                                         for root in _XML_ROOTS)):
        raise DiscoveryParseError("not_xml", "an HTML page, not XML")
    return data


def _gunzip(body: bytes) -> bytes:
    """Decompress a gzip body, refusing more than MAX_XML_BYTES of output (gzip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_XML_BYTES + 1)
    except zlib.error as exc:
        raise DiscoveryParseError("not_xml", f"corrupt gzip: {exc}") from None
    if len(out) > MAX_XML_BYTES or inflater.unconsumed_tail:
        raise DiscoveryParseError("too_large", f"gzip body inflates beyond {MAX_XML_BYTES} bytes")
    return out


def _xml_error(exc: Exception) -> DiscoveryParseError:
    if isinstance(exc, DefusedXmlException):
        # Entity declarations (billion laughs, quadratic blowup) and external entities (XXE)
        # are refused before any expansion, so a bomb fails in microseconds.
        return DiscoveryParseError("xml_bomb", f"{type(exc).__name__}: {exc}")
    return DiscoveryParseError("not_xml", str(exc))


def _local(tag: object) -> str:
    """Local name of an ElementTree tag: '{ns}item' -> 'item' (comments/PIs -> '')."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _absolute(href: str | None, base: str) -> str | None:
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


def _unique(urls: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(u for u in urls if u))


# ---------------------------------------------------------------------------------------------
# Feeds


def parse_feed(body: bytes, base_url: str) -> list[str]:
    """Item links of an RSS 2.0, Atom or RSS 1.0 (RDF) feed, absolute, in feed order."""
    data = _prepare_xml(body)
    try:
        root = safe_et.fromstring(data)
    except (DefusedXmlException, ParseError) as exc:
        raise _xml_error(exc) from None
    name, ns = _local(root.tag), _ns(root.tag)
    if name == "rss":
        return _unique(_rss_item_link(item, base_url) for item in root.iter("item"))
    if name == "feed" and (ns in _ATOM_NS or not ns):
        return _atom_links(root, base_url)
    if name == "RDF":
        items = (e for e in root.iter() if _local(e.tag) == "item")
        return _unique(_rdf_item_link(item, base_url) for item in items)
    if name in ("urlset", "sitemapindex"):
        raise DiscoveryParseError("not_a_feed", f"<{name}> is a sitemap, not a feed")
    raise DiscoveryParseError("not_a_feed", f"root element <{name}> is not rss, feed or RDF")


def _rss_item_link(item: Element, base: str) -> str | None:
    # FeedBurner rewrites <link> to its click tracker and keeps the real URL in origLink.
    orig = item.find(_FEEDBURNER_ORIG)
    if orig is not None and (url := _absolute(orig.text, base)):
        return url
    link = item.find("link")
    if link is not None and (url := _absolute(link.text, base)):
        return url
    guid = item.find("guid")
    if guid is not None and guid.get("isPermaLink", "true").strip().lower() != "false":
        return _absolute(guid.text, base)
    return None


def _atom_links(root: Element, base: str) -> list[str]:
    feed_base = urljoin(base, root.get(_XML_BASE, ""))
    links: list[str | None] = []
    for entry in root:
        if _local(entry.tag) != "entry":
            continue
        entry_base = urljoin(feed_base, entry.get(_XML_BASE, ""))
        alternates = [link for link in entry if _local(link.tag) == "link"
                      and link.get("rel", "alternate").strip().lower() == "alternate"]
        # Several alternates (e.g. html and an AMP or JSON variant): the text/html one wins.
        alternates.sort(key=lambda link: link.get("type", "text/html") != "text/html")
        links.append(next((u for link in alternates
                           if (u := _absolute(link.get("href"), entry_base))), None))
    return _unique(links)


def _rdf_item_link(item: Element, base: str) -> str | None:
    link = next((e for e in item if _local(e.tag) == "link"), None)
    if link is not None and (url := _absolute(link.text, base)):
        return url
    return _absolute(item.get(_RDF_ABOUT), base)


# ---------------------------------------------------------------------------------------------
# Sitemaps


def parse_sitemap(body: bytes, base_url: str) -> SitemapResult:
    """URLs of a urlset (plain or Google News) or children of a sitemap index; gzip is fine."""
    data = _prepare_xml(body)
    if not data.startswith(b"<"):
        return _text_sitemap(data, base_url)
    result = SitemapResult()
    children: list[tuple[str, str]] = []  # (lastmod, url)
    root_name = ""
    depth = 0
    try:
        # iterparse + clear keeps memory flat on a 50,000-URL sitemap.
        for event, elem in safe_et.iterparse(io.BytesIO(data), events=("start", "end")):
            if event == "start":
                depth += 1
                if depth == 1:
                    root_name = _local(elem.tag)
                    if root_name not in ("urlset", "sitemapindex"):
                        raise DiscoveryParseError(
                            "not_a_sitemap", f"root element <{root_name}> is not urlset or "
                            "sitemapindex")
                continue
            depth -= 1
            if depth != 1:
                continue
            # Only <loc> directly under <url>/<sitemap>: image:loc and video:loc sit deeper.
            fields = {_local(child.tag): (child.text or "").strip() for child in elem}
            url = _absolute(fields.get("loc"), base_url)
            if url and root_name == "urlset" and _local(elem.tag) == "url":
                result.urls.append(url)
            elif url and root_name == "sitemapindex" and _local(elem.tag) == "sitemap":
                children.append((fields.get("lastmod", ""), url))
            elem.clear()
    except (DefusedXmlException, ParseError) as exc:
        raise _xml_error(exc) from None
    result.urls = _unique(result.urls)
    # Newest first so the per-run child cap keeps the sitemaps holding recent articles;
    # ISO 8601 lastmod strings sort chronologically, and undated children go last.
    children.sort(key=lambda c: c[0], reverse=True)
    result.children = _unique(url for _, url in children)
    return result


def _text_sitemap(data: bytes, base_url: str) -> SitemapResult:
    """The protocol's plain-text form: one absolute URL per line."""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    urls = [_absolute(line, base_url) for line in lines]
    if not lines or not all(u and u == line for u, line in zip(urls, lines, strict=True)):
        raise DiscoveryParseError("not_xml", "neither XML nor a text sitemap of URLs")
    return SitemapResult(urls=_unique(urls))


# ---------------------------------------------------------------------------------------------
# Listing pages


def parse_listing(body: bytes, base_url: str, source: Source) -> list[str]:
    """Article-looking links of a listing page on the source's own domains, in page order."""
    if len(body) > MAX_XML_BYTES:
        raise DiscoveryParseError("too_large", f"{len(body)} bytes > {MAX_XML_BYTES}")
    if not body.strip():
        raise DiscoveryParseError("not_html", "empty body")
    try:
        doc = lxml.html.document_fromstring(body)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise DiscoveryParseError("not_html", str(exc)) from None
    base_el = doc.find(".//base[@href]")
    base = urljoin(base_url, base_el.get("href", "")) if base_el is not None else base_url
    self_key = normalize_url(base_url)
    links: list[str | None] = []
    for anchor in doc.iter("a"):
        if _in_navigation(anchor):
            continue
        url = _absolute(anchor.get("href"), base)
        if url and normalize_url(url) != self_key and looks_like_article(url, source):
            links.append(url)
    return _unique(links)


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


# ---------------------------------------------------------------------------------------------
# Candidates


def filter_candidates(urls: Iterable[str], source: Source, registry: Registry | None = None, *,
                      known: Callable[[str], bool] = lambda _url: False, found_via: str = "",
                      seen: set[str] | None = None) -> list[Candidate]:
    """Normalized, same-source, not-yet-stored URLs as Candidates, deduplicated, in order.

    `seen` (mutated) lets a caller dedupe across several batches of one discovery run.
    With a registry, a URL whose host a more specific source owns is left to that source.
    """
    seen = set() if seen is None else seen
    out: list[Candidate] = []
    for raw in urls:
        try:
            url = normalize_url(raw, drop=source.tracking_params)
        except ValueError:  # e.g. a port out of range in a hostile feed
            continue
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not source.matches_host(host):
            continue
        if registry is not None:
            owner = registry.source_for_host(host)
            if owner is not None and owner.name != source.name:
                continue
        if url in seen:
            continue
        seen.add(url)
        if known(url):
            continue
        out.append(Candidate(url=url, source=source.name, found_via=found_via))
    return out


# ---------------------------------------------------------------------------------------------
# Orchestration through a Fetcher


def discover_source(source: Source, fetcher: Fetcher, known: Callable[[str], bool],
                    validators: Mapping[str, Sequence[str | None]] | None = None, *,
                    registry: Registry | None = None) -> DiscoveryResult:
    """Fetch and parse every feed, sitemap and listing page of a source; never raises for one."""
    run = _Run(source=source, fetcher=fetcher, known=known, old=validators or {},
               registry=registry, result=DiscoveryResult(source=source.name))
    for url in source.feeds:
        run.visit(url, lambda body, u: parse_feed(body, u))
    run.sitemaps(source.sitemaps)
    for url in source.pages:
        run.visit(url, lambda body, u: parse_listing(body, u, source))
    return run.result


_Validators = tuple[str | None, str | None, str | None]  # etag, last_modified, body sha256


@dataclass(kw_only=True)
class _Doc:
    """A fetched feed, sitemap or page body; `unchanged` when its sha256 matches the stored one."""

    body: bytes
    final_url: str
    validators: _Validators
    unchanged: bool


@dataclass(kw_only=True)
class _Run:
    """State of one discover_source call: the result being built and what was seen."""

    source: Source
    fetcher: Fetcher
    known: Callable[[str], bool]
    old: Mapping[str, Sequence[str | None]]
    registry: Registry | None
    result: DiscoveryResult
    seen_urls: set[str] = field(default_factory=set)

    def visit(self, url: str, parse: Callable[[bytes, str], list[str]]) -> None:
        """Fetch one feed or listing page and add its new candidates."""
        doc = self.fetch(url)
        if doc is None:
            return
        if doc.unchanged:
            self.unchanged(url, doc.validators)
            return
        urls = self.parse_or_record(url, parse, doc.body, doc.final_url)
        if urls is not None:
            self.add(url, urls, doc.validators)

    def parse_or_record(self, url: str, parse: Callable[[bytes, str], _T], body: bytes,
                        base: str) -> _T | None:
        """parse(body, base), or None with the parse failure of url recorded."""
        try:
            return parse(body, base)
        except DiscoveryParseError as exc:
            self.parse_failed(url, exc)
        except Exception as exc:  # a parser bug on hostile input must not end the whole run
            log.exception("parsing %s", url)
            self.parse_failed(url, DiscoveryParseError("parse_error", repr(exc)))
        return None

    def sitemaps(self, roots: Sequence[str]) -> None:
        """Breadth-first over sitemap indexes: depth and child count capped, loops skipped."""
        queue = deque((url, 0) for url in roots)
        visited = {normalize_url(url) for url in roots}
        children = 0
        while queue:
            url, depth = queue.popleft()
            doc = self.fetch(url)
            if doc is None:
                continue
            parsed = self.parse_or_record(url, parse_sitemap, doc.body, doc.final_url)
            if parsed is None:
                continue
            if parsed.children:
                # An index is kept without HTTP validators, so it is always downloaded again:
                # its children can change while its own bytes (and ETag) stay the same.
                validators: _Validators = (None, None, doc.validators[2])
                if doc.unchanged:
                    self.unchanged(url, validators)
                else:
                    self.add(url, parsed.urls, validators)
            elif doc.unchanged:
                self.unchanged(url, doc.validators)
                continue
            else:
                self.add(url, parsed.urls, doc.validators)
            if depth >= MAX_SITEMAP_DEPTH:
                continue
            for child in parsed.children:
                key = normalize_url(child)
                if key in visited or children >= MAX_SITEMAP_CHILDREN:
                    continue
                visited.add(key)
                children += 1
                queue.append((child, depth + 1))

    def fetch(self, url: str) -> _Doc | None:
        """The document at url; None when it answered 304 or failed (both recorded)."""
        old = (*self.old.get(url, ()), None, None, None)
        etag, last_modified, old_sha = old[0], old[1], old[2]
        res = self.fetcher.fetch(url, source=self.source.name, etag=etag,
                                 last_modified=last_modified)
        if res.not_modified:
            self.unchanged(url, (etag, last_modified, old_sha))
            return None
        if res.page is None:
            # Labelled as a discovery failure so nothing retries a feed URL as an article.
            failure = res.failure or Failure(url=url, source=self.source.name, stage="discover",
                                             reason="no_response")
            self.result.failures.append(replace(failure, stage="discover"))
            return None
        page = res.page
        sha = hashlib.sha256(page.body).hexdigest()
        # Same bytes as last run: servers without (or with broken) ETag/Last-Modified.
        return _Doc(body=page.body, final_url=page.final_url or page.url or url,
                    validators=(page.etag, page.last_modified, sha), unchanged=sha == old_sha)

    def unchanged(self, url: str, validators: _Validators) -> None:
        self.result.not_modified.append(url)
        self.result.validators[url] = validators

    def add(self, url: str, found: list[str], validators: _Validators) -> None:
        # Validators are kept only after a successful parse, so a broken body is retried.
        self.result.validators[url] = validators
        self.result.candidates.extend(filter_candidates(
            found, self.source, self.registry, known=self.known, found_via=url,
            seen=self.seen_urls))

    def parse_failed(self, url: str, exc: DiscoveryParseError) -> None:
        self.result.failures.append(Failure(url=url, source=self.source.name, stage="discover",
                                            reason=exc.reason, detail=exc.detail))


# ---------------------------------------------------------------------------------------------
# Prefect task


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger
    try:
        return get_run_logger()
    except MissingContextError:  # called as discover_batch.fn(...) outside a run
        return log


# NO_CACHE: discovery must hit the network every run.
@task(name="discover-sources", cache_policy=NO_CACHE)
def discover_batch(sources: tuple[Source, ...], settings: FetchSettings,
                   known_urls: frozenset[str] = frozenset(),
                   validators: Mapping[str, Sequence[str | None]] | None = None
                   ) -> list[DiscoveryResult]:
    """Discover each source through one Fetcher; known_urls (normalized) are left out.

    The ingest flow passes none: it drops stored URLs after discovery by looking up only the
    listed ones (flows.ingest.drop_known), instead of loading the whole store's URLs.
    """
    from tasks import fetch

    logger = _logger()
    # Inside fetch_session() (the ingest flow) share the run's Fetcher: robots.txt and per-host
    # delays then carry over from discovery to fetching.
    shared = fetch._SHARED
    fetcher = shared or fetch.Fetcher(settings, sources)
    results: list[DiscoveryResult] = []
    try:
        for source in sources:
            result = discover_source(source, fetcher, known_urls.__contains__, validators)
            logger.info("discover %s: %d candidate URLs, %d unchanged, %d failures",
                        source.name, len(result.candidates), len(result.not_modified),
                        len(result.failures))
            results.append(result)
    finally:
        if shared is None:
            fetcher.close()
    return results
