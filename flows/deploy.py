"""`newsflow deploy` and `newsflow serve`: the deployments of prefect.yaml, on a worker or in one process.

prefect.yaml is the one place that says what runs when (schedules, triggers, parameters, the work
pool and the writer limit); both commands read it, so the two ways of running cannot drift apart.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from newsflow.errors import NewsflowError
from newsflow.settings import Settings, settings
from storage.db import db_path
from storage.lake import is_lake

PROJECT = Path(__file__).resolve().parents[1]
PREFECT_YAML = PROJECT / "prefect.yaml"
WRITER_LIMIT_ENV = Settings.variables()["writer_limit"]
DATA_ENV = (Settings.variables()["db"], Settings.variables()["sources"])


def load_spec(path: Path = PREFECT_YAML) -> dict[str, Any]:
    """prefect.yaml as a dict (a checkout is needed: the file is not packaged)."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NewsflowError(f"{path}: no prefect.yaml (run newsflow from a checkout)") from None
    if not isinstance(spec, dict) or not spec.get("deployments"):
        raise NewsflowError(f"{path}: no deployments")
    return spec


def work_pools(spec: dict[str, Any]) -> list[str]:
    """The work pools the deployments use, in order of first use."""
    names = [d.get("work_pool", {}).get("name") for d in spec["deployments"]]
    return list(dict.fromkeys(n for n in names if n))


def job_env(spec: dict[str, Any]) -> dict[str, str]:
    """The environment every deployment's job gets (the pool definition is shared)."""
    env: dict[str, str] = {}
    for d in spec["deployments"]:
        env.update(d.get("work_pool", {}).get("job_variables", {}).get("env") or {})
    return env


def writer_limit(spec: dict[str, Any]) -> str:
    """The name of the global concurrency limit that serialises DuckDB writes."""
    name = job_env(spec).get(WRITER_LIMIT_ENV)
    if not name:
        raise NewsflowError(f"{PREFECT_YAML}: no {WRITER_LIMIT_ENV} in the work pool's job env")
    return name


def api_url() -> str:
    """The Prefect API the deployments go to; a server is needed for schedules and triggers."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise NewsflowError(
            "PREFECT_API_URL is not set: deployments need a running Prefect server. Start one "
            "with `prefect server start` and run `prefect config set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api` (or export PREFECT_API_URL).")
    return url


async def ensure_work_pool(name: str) -> bool:
    """Create the process work pool unless it exists (kept as is: users may have tuned it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    async with get_client() as client:
        try:
            await client.create_work_pool(WorkPoolCreate(
                name=name, type="process",
                base_job_template=ProcessWorker.get_default_base_job_template()))
        except ObjectAlreadyExists:
            return False
    return True


async def ensure_limit(name: str, limit: int = 1) -> bool:
    """Create the global concurrency limit, or put it back to `limit` slots and active."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            current = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=limit))
            return True
        if current.limit != limit or not current.active:
            await client.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))
    return False


def data_env(db: str | None, sources: str | None) -> dict[str, str]:
    """NEWSFLOW_DB / NEWSFLOW_SOURCES as absolute paths (flow runs work in the checkout)."""
    env = {}
    for key, value in zip(DATA_ENV, (db or settings().db, sources or settings().sources), strict=True):
        env[key] = str(Path(value).resolve()) if value else ""
    if is_lake(db or settings().db):  # a lake URL is no path; a local catalog file is made absolute
        env[DATA_ENV[0]] = str(db_path(db))
    return env


def prepare(db: str | None, sources: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Check the server, create the work pools and the writer limit; returns (spec, env)."""
    api_url()
    spec = load_spec()
    for pool in work_pools(spec):
        asyncio.run(ensure_work_pool(pool))
    asyncio.run(ensure_limit(writer_limit(spec)))
    return spec, data_env(db, sources)


def deploy_all(db: str | None = None, sources: str | None = None) -> list[str]:
    """Idempotent `newsflow deploy`: pools, writer limit, then every deployment of prefect.yaml."""
    spec, env = prepare(db, sources)
    # PWD fills the pull step's `{{ $PWD }}` (the checkout), whatever folder we were called from.
    run_env = {**os.environ, **env, "PWD": str(PROJECT), "PREFECT_CLI_PROMPT": "false"}
    proc = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
                          cwd=PROJECT, env=run_env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise NewsflowError(f"prefect deploy failed (exit {proc.returncode}):\n{tail}")
    return [f"{d['entrypoint'].rsplit(':', 1)[1]}/{d['name']}" for d in spec["deployments"]]


def runner_deployments(spec: dict[str, Any]) -> list[Any]:
    """prefect.yaml's deployments as in-process RunnerDeployments (same schedules and triggers)."""
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    out = []
    for d in spec["deployments"]:
        path, name = d["entrypoint"].split(":")
        flow: Any = load_flow_from_entrypoint(f"{PROJECT / path}:{name}")
        schedules = [Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))
                     for s in d.get("schedules") or []]
        triggers = [DeploymentEventTrigger.model_validate(t) for t in d.get("triggers") or []]
        out.append(flow.to_deployment(
            name=d["name"], schedules=schedules or None, triggers=triggers or None,
            parameters=d.get("parameters") or {}, concurrency_limit=d.get("concurrency_limit"),
            description=d.get("description"), tags=d.get("tags")))
    return out


def serve_all(db: str | None = None, sources: str | None = None) -> None:
    """`newsflow serve`: run every deployment from this process until stopped (no worker)."""
    from prefect import serve

    spec, env = prepare(db, sources)
    # Runs are subprocesses of this one: they inherit the writer limit and the data paths, and
    # work in the checkout like worker runs do (so the default news.duckdb is the same file).
    os.environ.update({WRITER_LIMIT_ENV: writer_limit(spec), **env})
    os.chdir(PROJECT)
    serve(*runner_deployments(spec))
