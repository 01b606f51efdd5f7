"""Fixtures of the CLI tests: the session's Prefect API for `newsflow` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import newsflow_env


@pytest.fixture
def cli_env(prefect_api: None, tmp_path: Path) -> dict[str, str]:
    """Environment for a newsflow subprocess that runs flows: the session's throwaway API."""
    return newsflow_env(tmp_path)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m newsflow ARGS` as a user runs it, output captured."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    return subprocess.run([sys.executable, "-m", "newsflow", *args], capture_output=True,
                          text=True, timeout=180, env=env or base)
