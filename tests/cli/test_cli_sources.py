"""`newsflow sources`: the registry, each source with its health from the source_health view."""

from __future__ import annotations

import json
import os
from pathlib import Path

from newsflow.config import load_registry
from storage import writes
from storage.db import writer
from tests.cli.conftest import run_cli

REGISTRY = """
[[sources]]
name = "healthy"
publisher = "Good News"
kind = "original"
domains = ["good.example"]

[[sources]]
name = "blocked"
publisher = "Bad Luck"
kind = "aggregator"
domains = ["blocked.example"]
"""


def test_sources_lists_the_registry_with_health(tmp_path: Path) -> None:
    reg = tmp_path / "sources.toml"
    reg.write_text(REGISTRY)
    db = str(tmp_path / "n.duckdb")
    with writer(db) as con:
        writes.upsert_sources(con, load_registry(reg))
        for n in range(3):  # three ingest runs in which every feed of "blocked" failed
            run = f"run-{n}"
            writes.start_run(con, run, "ingest", {})
            writes.record_attempts(con, run, [
                ("https://blocked.example/feed/", "blocked", "listing", "failed", 403, "http_403",
                 1),
                ("https://good.example/feed/", "healthy", "listing", "ok", 200, None, 1)])
            writes.finish_run(con, run, "completed", {"sources": [
                {"source": "blocked", "new_articles": 0, "failed": 1},
                {"source": "healthy", "new_articles": 2, "failed": 0}]})
    r = run_cli("sources", "--sources", str(reg), "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [
        {"source": "healthy", "kind": "original", "publisher": "Good News", "enabled": True,
         "domains": "good.example", "runs": 3, "consecutive_failing_runs": 0, "flagged": False,
         "last_failure_reason": None},
        {"source": "blocked", "kind": "aggregator", "publisher": "Bad Luck", "enabled": True,
         "domains": "blocked.example", "runs": 3, "consecutive_failing_runs": 3,
         "flagged": True, "last_failure_reason": "http_403"}]
    r = run_cli("sources", "--sources", str(reg), "--db", db, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0 and f"2 sources in {reg}" in r.stdout and "blocked" in r.stdout


def test_sources_without_a_database_and_with_a_broken_registry(tmp_path: Path) -> None:
    reg = tmp_path / "sources.toml"
    reg.write_text(REGISTRY)
    r = run_cli("sources", "--sources", str(reg), "--db", str(tmp_path / "none.duckdb"),
                "-f", "csv")
    assert r.returncode == 0 and "no database yet" in r.stderr
    assert r.stdout.splitlines()[1] == "healthy,original,Good News,True,good.example,0,0,False,"
    reg.write_text(REGISTRY.replace('kind = "aggregator"', 'kind = "blog"'))
    r = run_cli("sources", "--sources", str(reg))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "source 'blocked': key 'kind'" in r.stderr.replace("\n", " ")
