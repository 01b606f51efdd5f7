"""Fixtures of the fault tests: the session's Prefect API URL for subprocesses, a fixture site."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import (
    http_server,  # noqa: F401  (re-exported fixture)
    newsflow_env,
)


@pytest.fixture
def subprocess_env(prefect_api: None, tmp_path: Path) -> dict[str, str]:
    """Environment for a newsflow subprocess: the session's throwaway Prefect API, no analytics."""
    return newsflow_env(tmp_path)


def newsflow(*args: str, env: dict[str, str], timeout: float = 120
             ) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user does (python -m newsflow), capturing its output."""
    return subprocess.run([sys.executable, "-m", "newsflow", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]
