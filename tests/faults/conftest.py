"""Fixtures of the fault tests: the session's Prefect API URL for subprocesses, a fixture site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import http_server  # noqa: F401  (re-exported fixture)


@pytest.fixture
def subprocess_env(prefect_api: None, tmp_path: Path) -> dict[str, str]:
    """Environment for a newsflow subprocess: the session's throwaway Prefect API, no analytics."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    assert url, "prefect_api fixture did not set an API URL"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSFLOW_", "PREFECT_"))}
    env.update(PREFECT_API_URL=url, PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    return env


def newsflow(*args: str, env: dict[str, str], timeout: float = 120
             ) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user does (python -m newsflow), capturing its output."""
    return subprocess.run([sys.executable, "-m", "newsflow", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]
