"""The ingest process killed with SIGKILL at a random point, then run again to completion.

After the kill: the database opens, and nothing in it is half-written (every article has its raw
page and its whole text). After the rerun: every page is stored exactly once. Kill points are
random within three phases (early, middle, late in the fetch/extract/store pipeline); the seed
is printed in failure messages and can be fixed with NEWSFLOW_FAULT_SEED.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flows.ingest import ingest
from tests.hardening.site import article_html, end_marker, query, registry
from tests.support import httpserver as hs
from tests.support.httpserver import FixtureServer, Handler

N_PAGES = 40
SEED = int(os.environ.get("NEWSFLOW_FAULT_SEED") or random.randrange(1 << 30))
SCRIPT = ("import sys\nfrom flows.ingest import ingest\n"
          "ingest(sources_file=sys.argv[1], db=sys.argv[2], batch_size=5, workers=2, "
          "run_dedupe=False)\n")
# Kill once the server has answered this many page requests (a random count in the range)
# plus a random extra delay: early, middle and late in the run.
PHASES = {"early": (1, 8), "middle": (12, 24), "late": (28, 36)}


class Slow:
    """Pages answered after a delay while `slow` is set (so a kill lands mid-run)."""

    def __init__(self, delay: float) -> None:
        self.delay, self.slow = delay, threading.Event()
        self.slow.set()

    def __call__(self, then: hs.Behaviour) -> hs.Behaviour:
        def behave(h: Handler) -> None:
            if self.slow.is_set() and h.stopping.wait(self.delay):
                return
            then(h)
        return behave


def _serve(server: FixtureServer, slow: Slow) -> dict[str, int]:
    paths = {f"/news/2024/05/story-{i:03d}/": i for i in range(N_PAGES)}
    for p, i in paths.items():
        server.route(p, slow(hs.static(article_html(i))))
    items = "".join(f"<item><link>{server.url(p)}</link></item>" for p in paths)
    server.static("/feed/", f'<rss version="2.0"><channel>{items}</channel></rss>'.encode(),
                  content_type="application/rss+xml", etag='"feed-v1"')
    return {server.url(p): i for p, i in paths.items()}


def _page_hits(server: FixtureServer) -> int:
    return sum(1 for r in server.requests if r.path.startswith("/news/"))


def _check_consistent(db: str, pages: dict[str, int], why: str) -> int:
    """No duplicates, no article without its raw page, no cut text; returns the article count."""
    rows = query(db, "SELECT a.url, a.text, r.url IS NOT NULL FROM article_records a "
                     "LEFT JOIN raw_pages r USING (url)")
    urls = [r[0] for r in rows]
    assert len(urls) == len(set(urls)), f"duplicate articles {why}"
    assert all(r[2] for r in rows), f"article without its raw page {why}"
    for url, text, _ in rows:
        assert end_marker(pages[url]) in text, f"half-written article {url} {why}"
    n_raw, n_distinct = query(db, "SELECT count(*), count(DISTINCT url) FROM raw_pages")[0]
    assert n_raw == n_distinct, f"duplicate raw pages {why}"
    return len(urls)


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigkill_then_rerun_loses_and_duplicates_nothing(
        phase: str, http_server: FixtureServer, tmp_path: Path,
        subprocess_env: dict[str, str]) -> None:
    rng = random.Random(f"{SEED}-{phase}")
    lo, hi = PHASES[phase]
    kill_after, jitter = rng.randint(lo, hi), rng.uniform(0.0, 0.3)
    why = f"(seed {SEED}, phase {phase}, after {kill_after} pages + {jitter:.2f}s)"
    slow = Slow(0.15)
    pages = _serve(http_server, slow)
    reg = registry(tmp_path / "sources.toml", http_server, feeds=["/feed/"], max_concurrency=2)
    db = str(tmp_path / "news.duckdb")

    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(reg), db], env=subprocess_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # own process group: workers die too
    try:
        deadline = time.monotonic() + 90
        while _page_hits(http_server) < kill_after and proc.poll() is None:
            assert time.monotonic() < deadline, f"ingest never got going {why}"
            time.sleep(0.01)
        time.sleep(jitter)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"ingest ended before the kill {why}: {err[-2000:]}"

    stored_at_kill = _check_consistent(db, pages, "after the kill " + why)
    print(f"killed {why}: {stored_at_kill} of {N_PAGES} articles stored")
    assert stored_at_kill < N_PAGES, f"the kill landed after the run {why}"
    # The feed's validators are saved only after its articles are stored, so the rerun reads
    # the feed again instead of getting a 304 and missing the unstored pages.
    assert query(db, "SELECT count(*) FROM http_validators")[0][0] == 0, why

    slow.slow.clear()
    hits_before = _page_hits(http_server)
    stats = ingest(sources_file=str(reg), db=db, workers=1, run_dedupe=False)
    assert _check_consistent(db, pages, "after the rerun " + why) == N_PAGES
    assert stats["new_articles"] == N_PAGES - stored_at_kill, why
    assert _page_hits(http_server) - hits_before == N_PAGES - stored_at_kill, why  # no refetch
    assert query(db, "SELECT count(*) FROM failures")[0][0] == 0, why
    statuses = sorted(r[0] for r in query(db, "SELECT status FROM runs"))
    assert statuses == ["completed", "running"], why  # the killed run stays visibly unfinished
