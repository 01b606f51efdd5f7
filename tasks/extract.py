"""Extraction with trafilatura: main text, metadata, canonical URL and the links in the body."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
import os
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import TYPE_CHECKING, Any

import lxml.html
import trafilatura
from htmldate import find_date
from lxml.etree import XPath
from trafilatura.htmlprocessing import prune_unwanted_nodes
from trafilatura.json_metadata import (
    JSON_UNICODE_REPLACE,
    extract_json,
    extract_json_parse_error,
    normalize_authors,
)
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import Document
from trafilatura.utils import HTML_STRIP_TAGS, trim
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS

from newsflow.errors import ConfigError
from newsflow.reasons import Reason
from newsflow.types import Article, Failure, RawPage
from newsflow.urls import article_id, host_of, normalize_url
from tasks import provenance, speedups

# Prefect is imported lazily (see __getattr__ below): the extraction worker processes import
# this module and never need it, and it would cost each of them ~55 MB (bench/run.py memory).
if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

# Comments are not the article: include_comments=False scores F1 0.960 against 0.953 with
# trafilatura's defaults on the article-extraction benchmark (bench/extraction_f1.py).
# Metadata comes from page_metadata below, not from bare_extraction.
EXTRACT_OPTIONS: dict[str, Any] = {"include_comments": False, "with_metadata": False,
                                   "include_tables": True}
# Fast mode first: it skips the readability/jusText comparison, ~30% of the CPU of a page. Its
# failures look alike on the 316 corpus pages: a short text (the comparison would have found
# the article) or one block (the whole-page dump of trafilatura's last resort). Those pages are
# extracted again in full mode, so they come out as full mode has them. Under 500 characters
# retries 11 of 316 pages and catches 4 of the 6 where the modes really differ; 1,000 retried
# 24 (+20% of main-text CPU) for one more catch, a page where full mode scores WORSE against
# the benchmark's truth (F1 0.9645 with 500, 0.9623 with 1,000; bench/extraction_f1.py).
FAST_MIN_CHARS = 500
_JSON_LD = './/script[@type="application/ld+json" or @type="application/settings+json"]'
# trafilatura reads broken JSON-LD with regexes whose cost grows with the square of its size:
# one live blog's 800 KB block took 1.6 s (one page of the corpus, but ~10% of a bench run's
# CPU). The author and title it looks for sit at the start of such blocks.
BROKEN_JSON_CHARS = 20_000
# Structured dates only (meta tags, JSON-LD, <time>): the extensive search also reads
# "(c) 2023" lines and URL fragments, which aggregators make wrong. max_date is far ahead so a
# future date is seen, and flagged untrusted, instead of silently dropped.
MAX_DATE = "2099-12-31"
_SURROGATES = re.compile("[\ud800-\udfff]")
MIN_WORDS = 5
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)
_NOT_HTML = ("application/pdf", "image/", "video/", "audio/", "application/zip",
             "application/octet-stream", "application/msword", "font/")
_BLOCKS = frozenset({"p", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "td", "dd",
                     "figcaption"})
_INLINE = frozenset({"span", "em", "strong", "b", "i", "u", "small", "sup", "sub", "mark", "cite"})


# The same output as trafilatura as shipped, ~30% less CPU a page (tasks/speedups.py says how).
speedups.install()


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
    # A third of a page's links share their block with another (148 links, 100 blocks a page
    # on the corpus): each block is searched for once.
    kept: dict[str, bool] = {}
    for href, block in anchors:
        probe = block[:80]
        if probe not in kept:
            kept[probe] = bool(probe) and probe in flat
        # Normalize only the few links that survive: normalizing all ~150 links of a page cost
        # ~10% of extract_page (bench/run.py profile).
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


def _normalize_json(text: str) -> str:
    """trafilatura's normalize_json, dropping lone surrogates with a regex instead of a per-character
    generator (that generator was a third of the JSON-LD step on pages with big blocks)."""
    if "\\" in text:
        text = text.replace("\\n", "").replace("\\r", "").replace("\\t", "")
        text = JSON_UNICODE_REPLACE.sub(lambda m: chr(int(m[1], 16)), text)
        text = unescape(_SURROGATES.sub("", text))
    return trim(HTML_STRIP_TAGS.sub("", text))


# JSON_MINIFY's tokens kept: a string, a run of other characters, or a quote opening no string.
_JSON_KEPT = re.compile(r'"(?:\\.|[^"\\])*"|[^"\s]+|"')


def _minify_json(text: str) -> str:
    """trafilatura's JSON_MINIFY.sub(r"\\1", text), whitespace outside strings dropped: the same
    text, from one match per token instead of a template expansion per character (half the time)."""
    return "".join(_JSON_KEPT.findall(text))


def _meta_json(tree: lxml.html.HtmlElement, doc: Document) -> Document:
    """trafilatura's extract_meta_json, with broken JSON read only up to BROKEN_JSON_CHARS."""
    for elem in tree.xpath(_JSON_LD):
        if not elem.text:
            continue
        text = _normalize_json(_minify_json(elem.text))
        try:
            doc = extract_json(json.loads(text, strict=False), doc)
        except json.JSONDecodeError:
            doc = extract_json_parse_error(text[:BROKEN_JSON_CHARS], doc)
    return doc


def _metainfo(tree: lxml.html.HtmlElement, expressions: list[XPath], len_limit: int) -> str | None:
    """trafilatura's extract_metainfo, reading no element's text past len_limit characters.

    It joins the whole text of every candidate, and author candidates can be big containers;
    trimming never makes a text shorter than its non-blank characters, so stopping there
    rejects exactly what trafilatura rejects.
    """
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

    trafilatura prunes a deep copy of the tree first; pruning the caller's tree saves that copy
    (~1 ms a page), so this runs last, when nothing reads the tree any more.
    """
    author = _metainfo(prune_unwanted_nodes(tree, AUTHOR_DISCARD_XPATHS), AUTHOR_XPATHS, 120)
    return normalize_authors(None, author) if author else None


def page_metadata(tree: lxml.html.HtmlElement, url: str) -> Document:
    """Title, author, date, URL and site name: trafilatura's extract_metadata, minus what we drop.

    trafilatura 2.3's extract_metadata also searches categories, tags and a licence, which
    newsflow does not store: about a third of its cost (bench profile, 200 corpus pages). The
    steps below are its own, so the fields we keep are the same; the byline search moved last
    because it prunes the tree: call this after everything else that reads the tree.
    """
    doc = examine_meta(tree)
    if doc.author and " " not in doc.author:  # a lone handle, not a name (as trafilatura does)
        doc.author = None
    with suppress(Exception):  # trafilatura guards the same call: its JSON-LD parser has bugs
        doc = _meta_json(tree, doc)
    doc.title = doc.title or extract_title(tree)
    doc.url = doc.url or extract_url(tree, url)
    doc.date = find_date(tree, url=doc.url, original_date=True, extensive_search=False,
                         max_date=MAX_DATE)
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
        meta = page_metadata(tree, base)  # last: it prunes the tree
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


_POOL: ProcessPoolExecutor | None = None
_IN_PROCESS = threading.Lock()
# Pages per hand-over to a worker process: small enough to balance a batch across workers,
# big enough that the hand-over (pickling, a pipe round trip) stays well under 1% of the work.
POOL_CHUNK = 8
# Where the extracting flows run extract_batch: "threads" (the default: threads of the flow
# process hand the work to the local pool below) or "dask" (prefect-dask: workers of the
# scheduler at $NEWSFLOW_DASK_ADDRESS, else of a LocalCluster the run starts and stops).
TASK_RUNNER_ENV = "NEWSFLOW_TASK_RUNNER"
DASK_ADDRESS_ENV = "NEWSFLOW_DASK_ADDRESS"


def default_workers() -> int:
    """Extraction processes: $NEWSFLOW_WORKERS, else one per core."""
    return int(os.environ.get("NEWSFLOW_WORKERS") or os.cpu_count() or 1)


def dask_runner(address: str | None = None, workers: int | None = None) -> TaskRunner[Any]:
    """A prefect-dask DaskTaskRunner on an existing scheduler, or on a LocalCluster of processes."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    # One single-threaded process per core: trafilatura holds the GIL, threads would not help.
    n = workers or default_workers()
    return DaskTaskRunner(cluster_kwargs={"n_workers": n, "threads_per_worker": 1, "processes": True})


def task_runner(threads: int = 4) -> TaskRunner[Any]:
    """The task runner the extracting flows use, as $NEWSFLOW_TASK_RUNNER / $NEWSFLOW_DASK_ADDRESS say."""
    from prefect.task_runners import ThreadPoolTaskRunner

    kind = runner_kind()
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=threads)
    if kind == "dask":
        return dask_runner(os.environ.get(DASK_ADDRESS_ENV) or None)
    raise ConfigError(f"${TASK_RUNNER_ENV}", f"unknown task runner {kind!r} (threads or dask)")


def runner_kind() -> str:
    """"threads" or "dask" (or whatever $NEWSFLOW_TASK_RUNNER says, for task_runner to reject)."""
    address = os.environ.get(DASK_ADDRESS_ENV) or None
    return (os.environ.get(TASK_RUNNER_ENV) or ("dask" if address else "threads")).lower()


def runs_in_process() -> bool:
    """Whether the running flow's tasks run in its own process, so extraction needs the local pool."""
    from prefect.context import FlowRunContext
    from prefect.task_runners import ThreadPoolTaskRunner

    ctx = FlowRunContext.get()
    return ctx is None or isinstance(ctx.task_runner, ThreadPoolTaskRunner)


@contextmanager
def extraction_pool(workers: int | None = None) -> Iterator[None]:
    """Worker processes for extract_batch while the flow's own process does I/O and writes.

    Prefect tasks run in threads of the flow process and hand the CPU-bound work to this pool:
    a ProcessPoolTaskRunner would start one ephemeral Prefect API server per worker process
    when no server is configured. forkserver, not fork: the flow process has threads.
    """
    global _POOL
    n = default_workers() if workers is None else workers
    if n <= 1 or _POOL is not None:
        yield
        return
    _POOL = ProcessPoolExecutor(max_workers=n, mp_context=_forkserver())
    try:
        yield
    finally:
        pool, _POOL = _POOL, None
        pool.shutdown(cancel_futures=True)


def _forkserver() -> multiprocessing.context.ForkServerContext:
    """The pool's process context: forked from a server that has imported this module."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tasks.extract"])
    return ctx


def start_forkserver(workers: int | None = None) -> None:
    """Start the pool's forkserver ahead of the flow, when the flow will use the local pool.

    The server imports trafilatura and the rest of this module before it can fork a worker: the
    CLI has it done while it waits for its Prefect API to start, instead of on the flow's first
    batch (2,000-page bench import: its first batch done 0.85 s after the flow began, not
    0.95-1.25 s).
    """
    n = default_workers() if workers is None else workers
    if n > 1 and runner_kind() == "threads":
        _forkserver()
        multiprocessing.forkserver.ensure_running()


def _extract_batch(pages: list[RawPage], label: str = "batch") -> list[Article | Failure]:
    """Prefect task: extract one batch of pages (one task per batch keeps Prefect overhead low).

    The batch is spread over all the pool's processes in small chunks, so a big batch (few task
    runs) still keeps every core busy, and the last batch of a run leaves no core idle for long.
    """
    pool = _POOL
    if pool is None:
        # One batch at a time: trafilatura/lxml in several threads of one process crashed it
        # natively now and then (SIGSEGV, tests/orchestration/test_one_writer.py).
        with _IN_PROCESS:
            return extract_pages(pages)
    return list(pool.map(extract_page, pages, chunksize=POOL_CHUNK))


def __getattr__(name: str) -> Any:
    """`extract_batch`, the Prefect task of _extract_batch, made on first use (PEP 562)."""
    if name != "extract_batch":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    made = task(name="extract-batch", task_run_name="extract-{label}",
                cache_policy=NO_CACHE)(_extract_batch)
    globals()["extract_batch"] = made
    return made
