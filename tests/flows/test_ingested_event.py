"""The ingested event: emitted only by runs that stored new articles, saying whether the run
deduped itself (the dedupe deployment's trigger stands down then); the db in it is absolute."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect.events import emit_event
from prefect.events.schemas.events import Resource

from flows.common import DEDUPE_LABEL, INGESTED_EVENT
from flows.deploy import load_spec, runner_deployments
from flows.ingest import ingest
from newsflow.cli.common import db_param
from storage.db import db_path
from tests.support.httpserver import FixtureServer
from tests.support.sites import serve_good_site, sources_toml

pytestmark = pytest.mark.usefixtures("prefect_api")
SENTINEL = "newsflow.test.sentinel"


def _events(name: str, resource_id: str) -> list[dict[str, Any]]:
    """Events of this name and resource the test API server has stored."""
    from prefect.client.orchestration import get_client

    async def go() -> list[dict[str, Any]]:
        async with get_client() as client:
            r = await client._client.post("/events/filter", json={
                "filter": {"event": {"name": [name]}, "resource": {"id": [resource_id]},
                           "occurred": {"since": "2020-01-01T00:00:00Z"}},
                "limit": 50})
            r.raise_for_status()
            return list(r.json()["events"])

    return asyncio.run(go())


def _settled() -> None:
    """Wait until an event emitted now is stored: events before it have been sent already."""
    mark = f"newsflow.test.{uuid.uuid4()}"
    emit_event(event=SENTINEL, resource={"prefect.resource.id": mark})
    deadline = time.monotonic() + 30
    while not _events(SENTINEL, mark):
        assert time.monotonic() < deadline, "the sentinel event never reached the API"
        time.sleep(0.3)


def _ingested(db: Path, run_id: str) -> list[dict[str, Any]]:
    return [e for e in _events(INGESTED_EVENT, f"newsflow.db.{db}")
            if e["payload"].get("run_id") == run_id]


def _run(**params: Any) -> tuple[str, dict[str, Any]]:
    """Run the ingest flow; (its flow run id, its stats)."""
    state = ingest(**params, return_state=True)
    return str(state.state_details.flow_run_id), state.result()


def test_event_only_for_new_articles_and_says_who_deduped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative --db: the event must still name the file absolutely
    with FixtureServer() as site:
        serve_good_site(site)
        reg = str(sources_toml(tmp_path / "sources.toml", site, feeds=["/feed/"]))
        first, stats = _run(sources_file=reg, db="news.duckdb", run_dedupe=False)
        assert stats["new_articles"]
        again, stats = _run(sources_file=reg, db="news.duckdb")
        assert stats["new_articles"] == 0
        _settled()
    (event,) = _ingested(tmp_path / "news.duckdb", first)
    assert event["payload"]["db"] == str(tmp_path / "news.duckdb")
    assert event["resource"]["prefect.resource.id"] == f"newsflow.db.{tmp_path / 'news.duckdb'}"
    # run_dedupe=False (a deployment's ingest): the dedupe deployment is to run.
    assert event["resource"][DEDUPE_LABEL] == "pending" and event["payload"]["dedupe"] == "pending"
    assert _ingested(tmp_path / "news.duckdb", again) == []  # nothing new: no event, no empty dedupe run


def test_cli_style_run_says_dedupe_done(tmp_path: Path) -> None:
    with FixtureServer() as site:
        serve_good_site(site)
        reg = str(sources_toml(tmp_path / "sources.toml", site, feeds=["/feed/"]))
        db = tmp_path / "n.duckdb"
        run_id, _ = _run(sources_file=reg, db=str(db))  # run_dedupe=True, as `newsflow run`
        _settled()
    (event,) = _ingested(db, run_id)
    assert event["resource"][DEDUPE_LABEL] == "done"


def test_dedupe_trigger_stands_down_for_runs_that_deduped() -> None:
    served = {d.name: d for d in runner_deployments(load_spec())}
    (trigger,) = served["dedupe"].triggers
    db = "newsflow.db./data/news.duckdb"
    pending = Resource({"prefect.resource.id": db, DEDUPE_LABEL: "pending"})
    done = Resource({"prefect.resource.id": db, DEDUPE_LABEL: "done"})
    assert trigger.match.matches(pending) and not trigger.match.matches(done)
    # The deployments' own ingest-like runs leave the dedupe to the deployment.
    for name in ("ingest", "reextract", "import-warc"):
        assert served[name].parameters.get("run_dedupe") is False


def test_relative_db_is_absolute_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.chdir(tmp_path)
    assert db_param("rel.duckdb") == str(tmp_path / "rel.duckdb")
    monkeypatch.setenv("NEWSFLOW_DB", "sub/../env.duckdb")
    assert db_path() == tmp_path / "env.duckdb" and db_param(None) == str(tmp_path / "env.duckdb")
