"""DuckLake against the DuckDB file: `newsflow import-warc` of the same corpus pages by one writer,
and by two writers at once (two halves of the pages), on a throwaway PostgreSQL catalog.

    .venv/bin/python bench/lake.py [--pages 4000]

Needs ../shared (the corpus), initdb/pg_ctl and the lake extra. Writes bench/results/lake.json
and a markdown table beside it; docs/ducklake.md quotes them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import build_warc, load_corpus, replicated  # noqa: E402
from bench.throughput import newsflow_bin  # noqa: E402
from storage import lake  # noqa: E402
from storage.db import reader  # noqa: E402
from tasks.warc import write_warc  # noqa: E402
from tests.support.postgres import PASSWORD, throwaway_postgres  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def env_for(home: Path, data: Path) -> dict[str, str]:
    """A private Prefect home (a temporary local API per process), the catalog's password."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSFLOW_", "PREFECT_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PYTHONUNBUFFERED="1", PGPASSWORD=PASSWORD, NEWSFLOW_DATA_PATH=str(data))
    return env


def imports(jobs: list[tuple[Path, str, dict[str, str]]]) -> float:
    """Run the `newsflow import-warc` jobs at once; the wall seconds until the last ends."""
    start = time.monotonic()
    procs = [subprocess.Popen([newsflow_bin(), "import-warc", str(warc), "--db", db], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for warc, db, env in jobs]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"import-warc exited {p.returncode}:\n{err[-3000:]}")
    return time.monotonic() - start


def counts(db: str) -> tuple[int, int, int]:
    """(raw pages, distinct raw page URLs, articles) stored."""
    with reader(db) as con:
        row = con.execute("SELECT (SELECT count(*) FROM raw_pages), "
                          "(SELECT count(DISTINCT url) FROM raw_pages), "
                          "(SELECT count(*) FROM article_records)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pages", type=int, default=4000)
    args = ap.parse_args()
    n = args.pages
    work = Path(tempfile.mkdtemp(prefix="newsflow-lake-bench-"))
    pages = load_corpus()
    whole, half_a, half_b = work / "all.warc.gz", work / "a.warc.gz", work / "b.warc.gz"
    build_warc(whole, n, pages)
    write_warc(half_a, itertools.islice(replicated(pages, n), 0, None, 2))
    write_warc(half_b, itertools.islice(replicated(pages, n), 1, None, 2))
    print(f"{n} pages of {len(pages)} corpus pages; work dir {work}", flush=True)
    homes = [work / "home-a", work / "home-b"]
    results: dict[str, Any] = {"pages": n, "cpus": os.cpu_count(), "load_before": os.getloadavg(),
                               "at": datetime.now(UTC).isoformat(timespec="seconds")}
    with throwaway_postgres() as pg:
        warm = work / "warm.warc.gz"
        build_warc(warm, 5, pages)
        for i, home in enumerate(homes):  # each Prefect home's database exists before timing
            imports([(warm, str(work / f"warm{i}.duckdb"), env_for(home, work / "warm-data"))])
        dbs = itertools.count()

        def lake_db() -> str:
            name = f"bench_{next(dbs)}"
            pg.create_database(name)
            return pg.url(name)

        runs: dict[str, tuple[list[tuple[Path, str]], str]] = {}
        f1, l1, l2 = str(work / "one.duckdb"), lake_db(), lake_db()
        f2 = str(work / "two.duckdb")
        runs["file, one writer"] = ([(whole, f1)], f1)
        runs["lake, one writer"] = ([(whole, l1)], l1)
        runs["lake, two writers at once"] = ([(half_a, l2), (half_b, l2)], l2)
        runs["file, two writers taking turns"] = ([(half_a, f2), (half_b, f2)], f2)
        for label, (jobs, db) in runs.items():
            wall = imports([(w, d, env_for(homes[i], work / f"data-{label[:4]}"))
                            for i, (w, d) in enumerate(jobs)])
            raw, distinct, articles = counts(db)
            assert raw == distinct == n, f"{label}: {raw} raw pages, {distinct} distinct of {n}"
            results[label] = {"wall_s": round(wall, 1), "pages_per_s": round(n / wall, 1),
                              "articles": articles}
            print(f"{label}: {wall:.1f} s, {n / wall:.1f} pages/s, {articles} articles", flush=True)
            lake.close_all()
    base = results["file, one writer"]["wall_s"]
    results["ratios"] = {k: round(results[k]["wall_s"] / base, 2) for k in runs}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "lake.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# DuckLake bench ({results['at']}, {n} pages, {results['cpus']} CPUs)", "",
             "| run | wall s | pages/s | wall / file one writer |", "| --- | --- | --- | --- |"]
    lines += [f"| {k} | {results[k]['wall_s']} | {results[k]['pages_per_s']} | "
              f"{results['ratios'][k]} |" for k in runs]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
