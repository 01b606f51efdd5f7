"""Shared helpers for bench/ and scripts/: locate ../shared, load ground truth, build WARCs."""

from __future__ import annotations

import ast
import csv
import gzip
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tasks.warc import WarcResponse, write_warc

REPO = Path(__file__).resolve().parents[1]
BENCHMARK = "article-extraction-benchmark"


def shared_dir() -> Path:
    """The read-only shared folder: $NEWSFLOW_SHARED, else ../shared beside the checkout."""
    override = os.environ.get("NEWSFLOW_SHARED")
    path = Path(override) if override else REPO / ".." / "shared"
    path = path.resolve()
    if not (path / "corpus").is_dir():
        raise SystemExit(f"no corpus under {path}: set NEWSFLOW_SHARED to the shared folder")
    return path


def corpus_dir() -> Path:
    """The evaluation corpus inside the shared folder."""
    return shared_dir() / "corpus"


def read_manifest(folder: str) -> list[dict[str, str]]:
    """The rows of <corpus>/<folder>/MANIFEST.tsv as dicts keyed by column name."""
    with (corpus_dir() / folder / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_gz(path: Path) -> bytes:
    """The raw (still encoded) HTML bytes of a gzipped corpus page."""
    return gzip.decompress(path.read_bytes())


@dataclass(kw_only=True, frozen=True)
class BenchPage:
    """One page of the article-extraction-benchmark: its id, URL, raw HTML and true body."""

    key: str  # the sha256 stem of html/<key>.html.gz
    url: str
    html: bytes
    truth: str


def load_benchmark() -> list[BenchPage]:
    """All pages of the benchmark with their ground truth, sorted by key."""
    root = corpus_dir() / BENCHMARK
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for key in sorted(truth):
        item = truth[key]
        pages.append(BenchPage(
            key=key,
            url=item["url"],
            html=read_gz(root / "html" / f"{key}.html.gz"),
            truth=item.get("articleBody") or "",
        ))
    return pages


@dataclass(kw_only=True, frozen=True)
class FundusTruth:
    """The fundus ground truth of one page: body paragraphs and metadata."""

    paragraphs: tuple[str, ...]
    title: str | None
    authors: tuple[str, ...]
    published: str | None  # as stored, e.g. "2023-04-28 17:40:08+00:00"

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


_FUNDUS_KEY = re.compile(r"(\w+)\.json key (\w+)")


def _literal(value: object) -> object:
    """Fundus stores nested values as Python literals inside JSON strings."""
    if isinstance(value, str) and value[:1] in "[{(":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def fundus_truth(row: dict[str, str]) -> FundusTruth:
    """Ground truth of a fundus MANIFEST row (its has_ground_truth column names the json key)."""
    m = _FUNDUS_KEY.search(row["has_ground_truth"])
    if not m:
        raise ValueError(f"no fundus key in {row['has_ground_truth']!r}")
    folder = (corpus_dir() / row["file"]).parent
    entry = json.loads((folder / f"{m.group(1)}.json").read_text(encoding="utf-8"))[m.group(2)]
    body = _literal(entry.get("body", {}))
    paragraphs: list[str] = []
    if isinstance(body, dict):
        paragraphs.extend(body.get("summary") or [])
        for section in body.get("sections") or []:
            paragraphs.extend(section.get("headline") or [])
            paragraphs.extend(section.get("paragraphs") or [])
    authors = _literal(entry.get("authors", []))
    return FundusTruth(
        paragraphs=tuple(p for p in paragraphs if p.strip()),
        title=entry.get("title"),
        authors=tuple(authors) if isinstance(authors, list) else (),
        published=entry.get("publishing_date"),
    )


def warc_records(pages: Iterable[BenchPage], fetched_at: datetime) -> list[WarcResponse]:
    """One 200 text/html response per page, raw bytes as recorded (charset left to the reader)."""
    return [
        WarcResponse(url=p.url, fetched_at=fetched_at, status=200,
                     content_type="text/html", body=p.html)
        for p in pages
    ]


def build_benchmark_warc(path: Path, pages: Iterable[BenchPage]) -> int:
    """Write the benchmark pages to a gzipped WARC at path; returns the record count."""
    # The benchmark pages were fetched in November 2019; one fixed date keeps runs comparable.
    return write_warc(path, warc_records(pages, datetime(2019, 11, 20, 12, 0, tzinfo=UTC)))
