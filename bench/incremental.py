"""Cheap incremental runs: a second `newsflow run` over an unchanged site against the first one.

The site is a FixtureServer on 127.0.0.1 serving replicated corpus pages and an RSS feed, all
with ETag and Last-Modified, answering conditional GETs with 304; min_delay is 0.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.corpus import CorpusPage, vary_html
from bench.procs import Measured, check, run_measured
from tests.support.httpserver import FixtureServer, http_date
from tests.support.sites import rss, sources_toml

# A fixed date: the pages never change between the two runs.
LAST_MODIFIED = http_date(1_700_000_000)


def serve_site(server: FixtureServer, pages: list[CorpusPage], n: int) -> list[str]:
    """n article pages (corpus pages, varied per copy) and a feed listing them; their URLs."""
    urls = []
    for i in range(n):
        path = f"/news/{i:05d}-story/"
        body = vary_html(pages[i % len(pages)].html, i // len(pages))
        # No charset in the header: the corpus pages declare their own, as real servers often do.
        server.static(path, body, content_type="text/html", etag=f'"page-{i}"',
                      last_modified=LAST_MODIFIED)
        urls.append(server.url(path))
    server.static("/feed/", rss(urls), content_type="application/rss+xml", etag='"feed-1"',
                  last_modified=LAST_MODIFIED)
    server.static("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
    return urls


def in_flow(m: Measured) -> float:
    """Seconds from the ingest flow's first log line to its (and its subflow's) last one."""
    begin = m.first("Beginning flow run") or 0.0
    end = m.last("Finished in state") or m.wall
    return end - begin


def measure(pages: list[CorpusPage], n: int, workdir: Path, env: dict[str, str],
            rounds: int = 2) -> dict[str, Any]:
    """Pairs of `newsflow run`s (a first on a new database, then a second) over the same unchanged
    site, alternated; wall and in-flow times of each side, best of `rounds`.

    Best of two on both sides, as in the throughput section: a load change on this shared
    machine then hits both sides of the ratio instead of one. Every run is kept in the figures.
    """
    cmd_bin = str(Path(sys.executable).with_name("newsflow"))
    firsts: list[Measured] = []
    seconds: list[Measured] = []
    hits: list[tuple[int, int]] = []
    with FixtureServer() as server:
        serve_site(server, pages, n)
        toml = sources_toml(workdir / "incremental-sources.toml", server, feeds=["/feed/"])
        for r in range(rounds):
            db = workdir / f"incremental{r}.duckdb"
            cmd = [cmd_bin, "run", "--sources", str(toml), "--db", str(db)]
            start = len(server.requests)
            firsts.append(check(run_measured(cmd, env=env), "newsflow run (first)"))
            middle = len(server.requests)
            seconds.append(check(run_measured(cmd, env=env), "newsflow run (second)"))
            hits.append((middle - start, len(server.requests) - middle))
    first_flow = min(in_flow(m) for m in firsts)
    second_flow = min(in_flow(m) for m in seconds)
    first_wall = min(m.wall for m in firsts)
    second_wall = min(m.wall for m in seconds)
    return {
        "pages": n, "rounds": rounds,
        "first_wall_s": first_wall, "second_wall_s": second_wall,
        "first_flow_s": first_flow, "second_flow_s": second_flow,
        "runs_first_flow_s": [in_flow(m) for m in firsts],
        "runs_second_flow_s": [in_flow(m) for m in seconds],
        "runs_first_wall_s": [m.wall for m in firsts],
        "runs_second_wall_s": [m.wall for m in seconds],
        # The table shows the last round's requests; requests_per_round has every round's.
        "requests_first": hits[-1][0], "requests_second": hits[-1][1],
        "requests_per_round": hits,
        "ratio_flow": second_flow / first_flow,
        "ratio_wall": second_wall / first_wall,
    }
