"""The real thing: a Prefect server, `newsflow deploy` from prefect.yaml, a process worker.

An ingest run against a local fixture site must complete, its `news.articles.ingested` event must
trigger the dedupe deployment, and both runs' artifacts must be on the server. Everything the test
starts (server, worker, HTTP server) is stopped, also when an assertion fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from flows.deploy import PROJECT
from storage.db import reader
from tests.support.httpserver import FixtureServer
from tests.support.sites import serve_good_site, sources_toml

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(240)]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM the process group (server and worker have children), wait, then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Server:
    url: str
    env: dict[str, str]
    home: Path

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(list(args), env=self.env, cwd=PROJECT, capture_output=True,
                              text=True, timeout=timeout, check=False)
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        with (self.home / log).open("wb") as fh:
            return subprocess.Popen(list(args), env=self.env, cwd=PROJECT, stdout=fh,
                                    stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`prefect server start` on a free port with its own PREFECT_HOME, healthy within 90 s."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_CLI_PROMPT": "false",
           # A worker polls every 15 s by default: too slow for a test of the trigger chain.
           "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    srv = Server(url, env, home)
    proc = srv.start(str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                     str(port), "--analytics-off", log="server.log")
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).json() is True:
                    break
            except (requests.RequestException, ValueError):
                pass
            assert proc.poll() is None, (home / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server not healthy after 90 s"
            time.sleep(0.5)
        yield srv
    finally:
        stop(proc)


def api(url: str, coro_fn: Any) -> Any:
    """Run `coro_fn(client)` against this server (not the session's test harness)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go() -> Any:
        async with get_client() as client:
            return await coro_fn(client)

    with temporary_settings({PREFECT_API_URL: url}):
        return asyncio.run(go())


async def runs_of(client: Any) -> dict[str, list[Any]]:
    """Flow runs per deployment name."""
    deployments = {d.id: d.name for d in await client.read_deployments()}
    out: dict[str, list[Any]] = {}
    for r in await client.read_flow_runs():
        out.setdefault(deployments.get(r.deployment_id, "-"), []).append(r)
    return out


def wait_for_runs(srv: Server, worker: subprocess.Popen[bytes], ingest_id: str,
                  timeout: float) -> tuple[Any, list[Any]]:
    """Poll until our ingest run and a dedupe run (made by the trigger) are both final."""
    deadline = time.monotonic() + timeout
    while True:
        runs = api(srv.url, runs_of)
        ingest = next(r for r in runs.get("ingest", []) if str(r.id) == ingest_id)
        dedupe = [r for r in runs.get("dedupe", []) if r.state and r.state.is_final()]
        if (ingest.state.is_final() and dedupe) or time.monotonic() > deadline:
            return ingest, runs.get("dedupe", [])
        assert worker.poll() is None, (srv.home / "worker.log").read_text()[-3000:]
        time.sleep(1)


def test_deploy_ingest_triggers_dedupe_with_artifacts(server: Server, tmp_path: Path) -> None:
    with FixtureServer() as site:
        urls = serve_good_site(site)
        reg = sources_toml(tmp_path / "sources.toml", site, feeds=["/feed/"])
        db = tmp_path / "news.duckdb"
        server.env.update({"NEWSFLOW_DB": str(db), "NEWSFLOW_SOURCES": str(reg)})
        newsflow = [sys.executable, "-m", "newsflow"]
        server.run(*newsflow, "deploy")
        server.run(*newsflow, "deploy")  # idempotent: no second automation, no error

        async def setup(client: Any) -> tuple[Any, ...]:
            return (await client.read_deployments(), await client.read_automations(),
                    await client.read_global_concurrency_limit_by_name("newsflow-duckdb-writer"),
                    await client.read_work_pool("newsflow"))

        deployments, automations, limit, pool = api(server.url, setup)
        by_name = {d.name: d for d in deployments}
        assert set(by_name) == {"ingest", "dedupe", "reextract", "import-warc"}
        assert pool.type == "process" and limit.limit == 1
        assert [s.schedule.cron for s in by_name["ingest"].schedules] == ["*/15 * * * *"]
        assert by_name["ingest"].parameters == {"run_dedupe": False}
        assert len(automations) == 1  # the dedupe trigger, once after two deploys
        steps = by_name["ingest"].pull_steps
        assert steps == [{"prefect.deployments.steps.set_working_directory":
                          {"directory": str(PROJECT)}}]
        env = by_name["ingest"].job_variables["env"]
        assert env == {"NEWSFLOW_WRITER_LIMIT": "newsflow-duckdb-writer",
                       "NEWSFLOW_DB": str(db), "NEWSFLOW_SOURCES": str(reg)}

        # The cron schedule also puts runs on the calendar: follow the run we start ourselves.
        started = server.run(str(BIN / "prefect"), "deployment", "run", "ingest/ingest").stdout
        ingest_id = re.search(r"UUID: ([0-9a-f-]{36})", started)
        assert ingest_id, started
        worker = server.start(str(BIN / "prefect"), "worker", "start", "--pool", "newsflow",
                              "--type", "process", log="worker.log")
        try:
            ingest_run, dedupe_runs = wait_for_runs(server, worker, ingest_id[1], timeout=150)
        finally:
            stop(worker)
        log = (server.home / "worker.log").read_text(errors="replace")[-4000:]
        assert ingest_run.state.is_completed(), (ingest_run.state, log)
        assert dedupe_runs, ("no dedupe run was triggered", log)
        dedupe_run = min(dedupe_runs, key=lambda r: r.created)
        assert dedupe_run.state.is_completed(), (dedupe_run.state, log)
        # Created by the automation from the event, with the db templated from its payload.
        assert dedupe_run.created_by is not None and dedupe_run.created_by.type == "AUTOMATION"
        assert dedupe_run.parameters.get("db") == str(db)

        async def artifacts(client: Any) -> dict[str, list[Any]]:
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

            out = {}
            for name, run in (("ingest", ingest_run), ("dedupe", dedupe_run)):
                out[name] = await client.read_artifacts(artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
            return out

        arts = api(server.url, artifacts)
        tables = [a for a in arts["ingest"] if a.type == "table"]
        assert tables and "fixture" in str(tables[0].data), arts["ingest"]
        assert any(a.type == "markdown" for a in arts["dedupe"]), arts["dedupe"]
        with reader(db) as con:
            stored = {r[0] for r in con.execute("SELECT url FROM articles").fetchall()}
            run_rows = con.execute("SELECT flow, status FROM runs").fetchall()
        assert stored == set(urls)
        assert ("ingest", "completed") in run_rows
        cli_run_does_not_trigger_the_deployment(server, site, urls, db, reg)


async def ingested_events(client: Any) -> list[dict[str, Any]]:
    r = await client._client.post("/events/filter", json={
        "filter": {"event": {"name": ["news.articles.ingested"]},
                   "occurred": {"since": "2020-01-01T00:00:00Z"}}, "limit": 50})
    r.raise_for_status()
    return list(r.json()["events"])


def cli_run_does_not_trigger_the_deployment(server: Server, site: FixtureServer, urls: list[str],
                                            db: Path, reg: Path) -> None:
    """`newsflow run` against the server, deployments live, with a new article: it dedupes in
    its own process, its event says so, and the dedupe deployment stands down."""
    from tests.conftest import recorded_pages
    from tests.support.sites import rss

    extra = site.url("/news/extra-story/")
    site.static("/news/extra-story/", recorded_pages()[5].html())
    site.static("/feed/", rss([*urls, extra]), content_type="application/rss+xml")
    before = len(api(server.url, runs_of).get("dedupe", []))
    out = server.run(sys.executable, "-m", "newsflow", "run", "--db", str(db), "--sources",
                     str(reg)).stdout
    assert "1 new articles" in " ".join(out.split()), out
    deadline = time.monotonic() + 30
    while not (events := [e for e in api(server.url, ingested_events)
                          if e["resource"].get("newsflow.dedupe") == "done"]):
        assert time.monotonic() < deadline, "the CLI run's event never reached the server"
        time.sleep(0.5)
    assert events[0]["payload"]["new_articles"] == 1
    time.sleep(5)  # the automation reacts within a second or two to an event it matches
    assert len(api(server.url, runs_of).get("dedupe", [])) == before
    with reader(db) as con:  # deduped in the CLI's own process
        row = con.execute("SELECT count(*) FROM story_members m JOIN articles a USING "
                          "(article_id) WHERE a.url = ?", [extra]).fetchone()
    assert row == (1,)
