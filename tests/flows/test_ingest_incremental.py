"""An unchanged re-run: conditional GETs only, one task run, no dedupe flow unless work is left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
from prefect.states import State

from flows.ingest import ingest
from storage.db import reader
from tests.support.httpserver import FixtureServer
from tests.support.sites import GOOD, rss, serve_good_site, sources_toml

pytestmark = pytest.mark.usefixtures("prefect_api")


@dataclass
class Site:
    server: FixtureServer
    sources: str
    db: str
    urls: list[str]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The fixture site with ETags, ingested once without dedupe."""
    with FixtureServer() as server:
        urls = serve_good_site(server, etag="v1")
        server.static("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
        reg = sources_toml(tmp_path / "sources.toml", server, feeds=["/feed/"])
        db = str(tmp_path / "news.duckdb")
        stats = ingest(sources_file=str(reg), db=db, workers=1, run_dedupe=False)
        assert stats["new_articles"] == 4
        yield Site(server, str(reg), db, urls)


def run(site: Site, *, run_dedupe: bool) -> tuple[dict[str, object], UUID]:
    state: State = ingest(sources_file=site.sources, db=site.db, workers=1,
                          run_dedupe=run_dedupe, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return state.result(), flow_run_id


def task_names(flow_run_id: UUID, settle: float = 10.0) -> list[str]:
    """Names of the flow run's task runs (task states reach the API as events: poll a little)."""
    deadline = time.monotonic() + settle
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(0.5)  # any further task run of the flow would be recorded by now
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(r.name.rsplit("-", 1)[0] for r in runs)


def only_source(stats: dict[str, object]) -> dict[str, Any]:
    rows = stats["sources"]
    assert isinstance(rows, list) and len(rows) == 1
    return dict(rows[0])


def dedupe_runs() -> int:
    with get_client(sync_client=True) as client:
        return len(client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["dedupe"]))))


def test_unchanged_rerun_asks_the_feed_and_does_nothing_else(site: Site) -> None:
    hits = len(site.server.requests)
    stats, flow_run_id = run(site, run_dedupe=False)
    requests = site.server.requests[hits:]
    assert sorted(r.path for r in requests) == ["/feed/", "/robots.txt"]
    feed = next(r for r in requests if r.path == "/feed/")
    assert feed.header("If-None-Match") == "v1"  # still a conditional GET, not skipped
    assert stats["new_articles"] == 0 and stats["failed"] == 0
    row = only_source(stats)
    assert (row["not_modified"], row["discovered"], row["fetched"]) == (1, 0, 0)
    assert task_names(flow_run_id) == ["discover-sources"]
    with reader(site.db) as con:
        status = con.execute("SELECT status FROM runs WHERE run_id = ?",
                             [str(flow_run_id)]).fetchall()
        exchanges = con.execute("SELECT url, kind, outcome FROM fetch_attempts WHERE run_id = ?",
                                [str(flow_run_id)]).fetchall()
    assert status == [("completed",)]
    assert exchanges == [(site.server.url("/feed/"), "listing", "not_modified")]


def test_unchanged_rerun_starts_no_dedupe_flow_when_nothing_is_pending(site: Site) -> None:
    run(site, run_dedupe=True)  # dedupes the four articles the first run left pending
    before = dedupe_runs()
    with reader(site.db) as con:
        stories = con.execute("SELECT count(*) FROM stories").fetchone()
    assert stories == (4,)
    run(site, run_dedupe=True)
    assert dedupe_runs() == before


def test_unchanged_rerun_still_dedupes_what_an_earlier_run_left(site: Site) -> None:
    before = dedupe_runs()
    stats, _ = run(site, run_dedupe=True)
    assert stats["new_articles"] == 0
    assert dedupe_runs() == before + 1
    with reader(site.db) as con:
        stories = con.execute("SELECT count(*) FROM stories").fetchone()
    assert stories == (4,)


def test_a_changed_feed_fetches_only_its_new_urls(site: Site) -> None:
    new = site.server.url("/news/a-brand-new-story-on-the-fixture-site/")
    site.server.static("/news/a-brand-new-story-on-the-fixture-site/", GOOD[0].html())
    site.server.static("/feed/", rss(site.urls + [new]), content_type="application/rss+xml",
                       etag="v2")
    hits = len(site.server.requests)
    stats, _ = run(site, run_dedupe=False)
    pages = [r.path for r in site.server.requests[hits:] if r.path.startswith("/news/")]
    assert pages == ["/news/a-brand-new-story-on-the-fixture-site/"]
    row = only_source(stats)
    assert (row["discovered"], row["fetched"], row["new_articles"]) == (1, 1, 1)
