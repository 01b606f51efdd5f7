"""CPU cost of the provenance scan (tasks/provenance.py) next to extract_page, on the corpus pages.

Every corpus page under its recorded URL (so the page's own links are recognised as such):
extract_page's CPU a page, and provenance.scan's alone on the parsed trees, best of --rounds.

    .venv/bin/python bench/provenance_cost.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trafilatura  # noqa: E402

from bench.common import corpus_dir, read_gz, read_manifest  # noqa: E402
from newsflow.types import RawPage  # noqa: E402
from tasks import provenance, trafilatura_fast  # noqa: E402
from tasks.extract import decode_body, extract_page  # noqa: E402

FOLDERS = ("article-extraction-benchmark", "fundus", "trafilatura-eval", "newspaper4k-tests")
WHEN = datetime(2030, 1, 1, tzinfo=UTC)


def corpus_pages() -> list[RawPage]:
    """Every page of the corpus manifests whose file is there."""
    pages = []
    for folder in FOLDERS:
        for row in read_manifest(folder):
            path = corpus_dir() / row["file"]
            if not path.is_file():
                path = corpus_dir() / folder / row["file"]
            if path.is_file():
                pages.append(RawPage(url=row["url"], source="bench", fetched_at=WHEN,
                                     body=read_gz(path)))
    return pages


def best_ms(fn: Callable[[], object], n: int, rounds: int) -> float:
    """The best of rounds timings of fn, in ms of process CPU per page."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / n * 1000


def main(argv: Sequence[str] | None = None) -> int:
    """Print extract_page's and the scan's CPU per page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    trafilatura_fast.install()  # as the product extracts
    pages = corpus_pages()
    trees = [(trafilatura.load_html(decode_body(p)), p.url) for p in pages]
    for p in pages[:10]:  # warm caches and lazy imports
        extract_page(p)
    extract = best_ms(lambda: [extract_page(p) for p in pages], len(pages), args.rounds)
    scan = best_ms(lambda: [provenance.scan(t, (u,)) for t, u in trees], len(trees), args.rounds)
    print(f"{len(pages)} pages: extract_page {extract:.2f} ms CPU a page (scan included), "
          f"provenance.scan {scan:.2f} ms ({scan / extract:.1%} of it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
