"""Bench input: every corpus page, replicated with varied URLs and lightly varied text, as a WARC."""

from __future__ import annotations

import hashlib
import os
import random
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import read_gz, read_manifest
from newsflow.urls import normalize_url
from tasks.warc import WarcResponse, write_warc

FOLDERS = ("article-extraction-benchmark", "fundus", "trafilatura-eval", "newspaper4k-tests")
FETCHED_AT = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
VERSION = 1  # of the replication below: bump it to rebuild cached WARCs
# Opening <p> tags: the variation goes into body paragraphs, where the extractor keeps it.
_P_OPEN = re.compile(rb"<p(?:\s[^>]*)?>", re.I)
_WORDS = ("council", "river", "budget", "vote", "storm", "market", "school", "bridge", "court",
          "harbor", "festival", "transit", "clinic", "orchard", "library", "senate", "rally",
          "museum", "airport", "factory", "stadium", "village", "reserve", "tunnel", "ferry")


@dataclass(kw_only=True, frozen=True)
class CorpusPage:
    """One real page of the shared corpus: where it claims to come from and its raw bytes."""

    url: str
    html: bytes


def load_corpus() -> list[CorpusPage]:
    """Every page of every corpus folder (the 181 benchmark pages first), in manifest order."""
    from bench.common import corpus_dir

    root = corpus_dir()
    pages = []
    seen: set[str] = set()
    for folder in FOLDERS:
        for row in read_manifest(folder):
            if not row["url"].startswith(("http://", "https://")):
                continue  # one newspaper4k page has no URL: a WARC record needs one
            if normalize_url(row["url"]) in seen:
                continue  # the same article in two folders: newsflow would skip the second
            seen.add(normalize_url(row["url"]))
            pages.append(CorpusPage(url=row["url"], html=read_gz(root / row["file"])))
    return pages


def vary_url(url: str, copy: int) -> str:
    """The URL of copy n: copy 0 keeps the original; others get a distinct path segment."""
    if copy == 0:
        return url
    url = url.partition("#")[0]
    base, _, query = url.partition("?")
    base = base.rstrip("/")
    return f"{base}/copy-{copy}" + (f"?{query}" if query else "")


def vary_html(html: bytes, copy: int, *, paragraphs: int = 3) -> bytes:
    """Copy n of a page: a short seeded sentence opens its first few paragraphs (copy 0 unchanged).

    Light enough that the extracted text stays a near-duplicate (as syndicated copies are), but
    no two copies share a body hash, so dedupe has real work instead of exact-hash hits.
    """
    if copy == 0:
        return html
    rng = random.Random(copy)
    out: list[bytes] = []
    last = 0
    for n, m in enumerate(_P_OPEN.finditer(html)):
        if n >= paragraphs:
            break
        words = " ".join(rng.choice(_WORDS) for _ in range(4))
        out += [html[last:m.end()], f"Update {copy}: {words}. ".encode()]
        last = m.end()
    out.append(html[last:])
    return b"".join(out)


def replicated(pages: list[CorpusPage], n: int) -> Iterator[WarcResponse]:
    """n WARC records cycling through pages, copy k of each page varied as above."""
    for i in range(n):
        page = pages[i % len(pages)]
        copy = i // len(pages)
        yield WarcResponse(url=vary_url(page.url, copy), fetched_at=FETCHED_AT, status=200,
                           content_type="text/html", body=vary_html(page.html, copy))


def build_warc(path: Path, n: int, pages: list[CorpusPage] | None = None) -> int:
    """Write n replicated corpus pages to a gzipped WARC at path; returns the record count."""
    return write_warc(path, replicated(pages if pages is not None else load_corpus(), n))


def cache_dir() -> Path:
    """Where built bench WARCs are kept between runs: $NEWSFLOW_BENCH_CACHE, else the temp dir."""
    path = Path(os.environ.get("NEWSFLOW_BENCH_CACHE") or Path(tempfile.gettempdir()) / "newsflow-bench")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_warc(n: int, pages: list[CorpusPage]) -> Path:
    """A WARC of n replicated pages, built once per corpus and size (building 10k takes ~1 min)."""
    h = hashlib.sha256(str(VERSION).encode())
    for p in pages:
        h.update(p.url.encode())
        h.update(hashlib.sha256(p.html).digest())
    path = cache_dir() / f"bench-{n}-{h.hexdigest()[:12]}.warc.gz"
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        build_warc(tmp, n, pages)
        tmp.replace(path)
    return path
