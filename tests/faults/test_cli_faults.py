"""CLI-level faults: the database held by another process, PREFECT_API_URL pointing nowhere.

Each must end in exit status 1 and one clear line on stderr, never a traceback, and leave the
database usable (a run after the fault is cleared works).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.faults.conftest import error_lines, newsflow
from tests.hardening.site import article_html, article_urls, registry
from tests.support.httpserver import FixtureServer

HOLD = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(float(sys.argv[2]))")
DEAD_API = "http://127.0.0.1:9/api"  # the discard port: nothing listens there


def _site(server: FixtureServer, tmp_path: Path) -> Path:
    paths = [f"/news/story-{i}/" for i in range(2)]
    for i, p in enumerate(paths):
        server.static(p, article_html(i))
    items = "".join(f"<item><link>{server.url(p)}</link></item>" for p in paths)
    server.static("/feed/", f'<rss version="2.0"><channel>{items}</channel></rss>'.encode(),
                  content_type="application/rss+xml")
    return registry(tmp_path / "sources.toml", server, feeds=["/feed/"])


def test_run_while_another_process_holds_the_database(http_server: FixtureServer, tmp_path: Path,
                                                      subprocess_env: dict[str, str]) -> None:
    reg, db = _site(http_server, tmp_path), tmp_path / "news.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "60"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        r = newsflow("run", "--sources", str(reg), "--db", str(db),
                     env={**subprocess_env, "NEWSFLOW_DB_WAIT": "1.5"})
        waited = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 1, r.stdout + r.stderr
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert str(db) in lines[0] and f"PID {holder.pid}" in lines[0], lines[0]
    assert "Traceback" not in r.stderr and waited >= 1.5
    assert http_server.hits("/feed/") == 0  # gave up before touching any site

    # Released: the same command now works, and nothing of the failed attempt is in the way.
    r = newsflow("run", "--sources", str(reg), "--db", str(db), env=subprocess_env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(article_urls(str(db))) == 2


def test_dead_prefect_api_is_one_clear_error(http_server: FixtureServer, tmp_path: Path,
                                             subprocess_env: dict[str, str]) -> None:
    reg, db = _site(http_server, tmp_path), tmp_path / "news.duckdb"
    env = {**subprocess_env, "PREFECT_API_URL": DEAD_API}
    for args in (["run", "--sources", str(reg), "--db", str(db)],
                 ["demo", "--db", str(tmp_path / "demo.duckdb")]):
        start = time.monotonic()
        r = newsflow(*args, env=env)
        assert r.returncode == 1, (args, r.stdout, r.stderr[-3000:])
        lines = error_lines(r.stderr)
        assert len(lines) == 1, r.stderr[-3000:]
        assert "PREFECT_API_URL" in lines[0] and DEAD_API in lines[0]
        assert "Traceback" not in r.stderr
        assert time.monotonic() - start < 30
    assert not db.exists() and http_server.hits("/feed/") == 0  # failed before doing anything
