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


def measure(pages: list[CorpusPage], n: int, workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Two `newsflow run`s over the same unchanged site; wall and in-flow times of each."""
    db = workdir / "incremental.duckdb"
    cmd_bin = str(Path(sys.executable).with_name("newsflow"))
    with FixtureServer() as server:
        serve_site(server, pages, n)
        toml = sources_toml(workdir / "incremental-sources.toml", server, feeds=["/feed/"])
        cmd = [cmd_bin, "run", "--sources", str(toml), "--db", str(db)]
        first = check(run_measured(cmd, env=env), "newsflow run (first)")
        hits_first = len(server.requests)
        second = check(run_measured(cmd, env=env), "newsflow run (second)")
        hits_second = len(server.requests) - hits_first
    return {
        "pages": n,
        "first_wall_s": first.wall, "second_wall_s": second.wall,
        "first_flow_s": in_flow(first), "second_flow_s": in_flow(second),
        "requests_first": hits_first, "requests_second": hits_second,
        "ratio_flow": in_flow(second) / in_flow(first),
        "ratio_wall": second.wall / first.wall,
    }
