"""Fixtures of the CLI tests: the session's Prefect API for `newsflow` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def cli_env(prefect_api: None, tmp_path: Path) -> dict[str, str]:
    """Environment for a newsflow subprocess that runs flows: the session's throwaway API."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    assert url, "prefect_api fixture did not set an API URL"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSFLOW_", "PREFECT_"))}
    env.update(PREFECT_API_URL=url, PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m newsflow ARGS` as a user runs it, output captured."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    return subprocess.run([sys.executable, "-m", "newsflow", *args], capture_output=True,
                          text=True, timeout=180, env=env or base)
