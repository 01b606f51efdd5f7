"""The source_health view over real ingest runs: flagged after 3 failing runs in a row, reset after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.ingest import ingest
from storage.db import reader
from tests.support import httpserver as hs
from tests.support.httpserver import FixtureServer
from tests.support.sites import serve_good_site, sources_toml

pytestmark = pytest.mark.usefixtures("prefect_api")


def health(db: str) -> dict[str, Any]:
    with reader(db) as con:
        cur = con.execute("SELECT * FROM source_health WHERE source = 'fixture'")
        cols = [d[0] for d in cur.description or []]
        row = cur.fetchone()
    assert row is not None
    return dict(zip(cols, row, strict=True))


def test_broken_feed_is_flagged_after_three_runs_then_recovers(tmp_path: Path) -> None:
    db = str(tmp_path / "news.duckdb")
    with FixtureServer() as server:
        server.route("/feed/", hs.status_only(503, b"down"))
        reg = str(sources_toml(tmp_path / "sources.toml", server, feeds=["/feed/"]))
        seen = []
        for _ in range(3):
            ingest(sources_file=reg, db=db, workers=1, run_dedupe=False)
            h = health(db)
            seen.append((h["consecutive_failing_runs"], h["flagged"]))
        assert seen == [(1, False), (2, False), (3, True)]
        assert h["runs"] == 3 and h["last_ok_run_at"] is None
        assert h["last_failure_reason"] == "http_503"

        serve_good_site(server)  # the feed is back, with articles
        ingest(sources_file=reg, db=db, workers=1, run_dedupe=False)
    h = health(db)
    assert (h["consecutive_failing_runs"], h["flagged"], h["runs"]) == (0, False, 4)
    assert h["last_ok_run_at"] == h["last_run_at"]
