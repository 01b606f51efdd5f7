"""Extraction quality on the article-extraction-benchmark: bare trafilatura vs newsflow end to end.

The metric replicates scrapinghub/article-extraction-benchmark evaluate.py:
- tokens are the `\\w+` matches of the text (case kept, punctuation dropped);
- each text becomes a multiset of word 4-gram shingles (a text of 1-3 tokens is one
  shorter shingle, an empty text none);
- per page, tp/fp/fn are multiset overlaps, normalised by tp+fp+fn so long pages weigh
  no more than short ones;
- precision is averaged over pages whose prediction is non-empty (tp+fp > 0), recall over
  pages whose ground truth is non-empty (tp+fn > 0): an empty prediction lowers recall only;
- F1 is the harmonic mean of the AVERAGED precision and recall (not a mean of per-page F1);
- accuracy is the share of pages whose token lists are identical.

Run from the repo root:
    .venv/bin/python bench/extraction_f1.py [--bare-only] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BenchPage, build_benchmark_warc, load_benchmark  # noqa: E402
from newsflow.urls import normalize_url  # noqa: E402

NGRAM = 4
_TOKEN = re.compile(r"\w+")

TpFpFn = tuple[float, float, float]


def tokenize(text: str | None) -> list[str]:
    """The word tokens of text, as the benchmark counts them."""
    return _TOKEN.findall(text or "")


def shingles(text: str | None, n: int = NGRAM) -> Counter[tuple[str, ...]]:
    """Multiset of word n-grams; a text shorter than n tokens is one short shingle."""
    tokens = tokenize(text)
    if not tokens:
        return Counter()
    return Counter(tuple(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1)))


def match(truth: str | None, pred: str | None, n: int = NGRAM) -> TpFpFn:
    """Normalised (tp, fp, fn) of one page's shingles."""
    true_sh, pred_sh = shingles(truth, n), shingles(pred, n)
    tp = float(sum((true_sh & pred_sh).values()))
    fp = float(sum((pred_sh - true_sh).values()))
    fn = float(sum((true_sh - pred_sh).values()))
    total = tp + fp + fn
    if total == 0:
        return (0.0, 0.0, 0.0)
    return (tp / total, fp / total, fn / total)


def precision_of(tp: float, fp: float, fn: float) -> float:
    """Per-page precision with the benchmark's conventions for empty sides."""
    if fp == 0 and fn == 0:
        return 1.0
    if tp == 0 and fp == 0:
        return 0.0
    return tp / (tp + fp)


def recall_of(tp: float, fp: float, fn: float) -> float:
    """Per-page recall with the benchmark's conventions for empty sides."""
    if fp == 0 and fn == 0:
        return 1.0
    if tp == 0 and fn == 0:
        return 0.0
    return tp / (tp + fn)


@dataclass(kw_only=True)
class Scores:
    """Benchmark figures of one extractor over a set of pages."""

    name: str
    pages: int
    f1: float
    precision: float
    recall: float
    accuracy: float
    empty: int  # pages with no predicted text (not extracted or missing)
    seconds: float = 0.0


def aggregate(triples: Sequence[TpFpFn]) -> tuple[float, float, float]:
    """(f1, precision, recall): averaged precision and recall, F1 their harmonic mean."""
    precisions = [precision_of(*t) for t in triples if t[0] + t[1] > 0]
    recalls = [recall_of(*t) for t in triples if t[0] + t[2] > 0]
    precision = statistics.mean(precisions) if precisions else 0.0
    recall = statistics.mean(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


def score(name: str, pairs: Sequence[tuple[str, str | None]], seconds: float = 0.0) -> Scores:
    """Score (truth, prediction) pairs, one per page."""
    triples = [match(truth, pred) for truth, pred in pairs]
    f1, precision, recall = aggregate(triples)
    accuracy = statistics.mean(
        float(tokenize(truth) == tokenize(pred)) for truth, pred in pairs) if pairs else 0.0
    empty = sum(1 for _, pred in pairs if not tokenize(pred))
    return Scores(name=name, pages=len(pairs), f1=f1, precision=precision, recall=recall,
                  accuracy=accuracy, empty=empty, seconds=seconds)


def score_bare(name: str, pages: Sequence[BenchPage], *, include_comments: bool = True) -> Scores:
    """Run trafilatura.extract on every page, decoded as UTF-8 as the benchmark's runner does."""
    import trafilatura

    start = time.perf_counter()
    preds = [trafilatura.extract(p.html.decode("utf-8"), include_comments=include_comments)
             for p in pages]
    return score(name, [(p.truth, pred) for p, pred in zip(pages, preds, strict=True)],
                 time.perf_counter() - start)


def newsflow_command() -> list[str]:
    """The newsflow CLI of this interpreter's environment."""
    beside = Path(sys.executable).parent / "newsflow"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("newsflow")
    if found:
        return [found]
    raise SystemExit("no newsflow command: install the project (pip install -e .)")


def run_newsflow(pages: Sequence[BenchPage], workdir: Path) -> dict[str, str]:
    """Import the pages as a WARC with the newsflow CLI; text by normalized URL."""
    warc = workdir / "f1.warc.gz"
    db = workdir / "f1.duckdb"
    build_benchmark_warc(warc, pages)
    env = dict(os.environ)
    # Without a configured API, Prefect runs ephemerally in PREFECT_HOME: keep it in the
    # temp dir so a benchmark never writes into the user's own Prefect database.
    if not env.get("PREFECT_API_URL"):
        env["PREFECT_HOME"] = str(workdir / "prefect-home")
    cmd = [*newsflow_command(), "import-warc", str(warc), "--db", str(db)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return read_articles(db)


def read_articles(db: Path) -> dict[str, str]:
    """Text of every stored article by normalized URL (its canonical URL as a fallback)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT url, canonical_url, text FROM articles").fetchall()
    finally:
        con.close()
    texts = {normalize_url(canonical): text or "" for _, canonical, text in rows if canonical}
    # The stored URL wins over another page's canonical URL.
    texts.update({normalize_url(url): text or "" for url, _, text in rows})
    return texts


def score_newsflow(pages: Sequence[BenchPage]) -> Scores:
    """End to end: WARC -> `newsflow import-warc` -> DuckDB articles view -> score."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="newsflow-f1-") as tmp:
        texts = run_newsflow(pages, Path(tmp))
    seconds = time.perf_counter() - start
    # A page newsflow did not store counts as an empty prediction, as in the benchmark.
    pairs = [(p.truth, texts.get(normalize_url(p.url))) for p in pages]
    return score("newsflow import-warc", pairs, seconds)


def table(rows: Iterable[Scores]) -> str:
    """The figures as a small fixed-width table."""
    lines = [f"{'extractor':<36} {'pages':>5} {'F1':>6} {'prec':>6} {'recall':>6} "
             f"{'acc':>6} {'empty':>5} {'sec':>6}"]
    for s in rows:
        lines.append(f"{s.name:<36} {s.pages:>5} {s.f1:>6.3f} {s.precision:>6.3f} "
                     f"{s.recall:>6.3f} {s.accuracy:>6.3f} {s.empty:>5} {s.seconds:>6.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Score bare trafilatura (two settings) and newsflow on the benchmark; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bare-only", action="store_true", help="skip the newsflow run")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    parser.add_argument("--limit", type=int, default=0, help="only the first N pages (smoke)")
    args = parser.parse_args(argv)

    pages = load_benchmark()
    if args.limit:
        pages = pages[: args.limit]
    runs: list[Callable[[], Scores]] = [
        lambda: score_bare("trafilatura include_comments=False", pages, include_comments=False),
        lambda: score_bare("trafilatura defaults", pages),
    ]
    if not args.bare_only:
        runs.append(lambda: score_newsflow(pages))
    results: list[Scores] = []
    for run in runs:
        results.append(run())
        print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(results))
    print("F1 = harmonic mean of averaged precision and recall (as evaluate.py)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "article-extraction-benchmark",
                                         "metric": "evaluate.py shingle F1 (n=4)",
                                         "results": [asdict(s) for s in results]}, indent=2)
                             + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
