"""Shared pytest fixtures: `from tests.support.fixtures import http_server` in a conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.httpserver import FixtureServer

__all__ = ["http_server"]


@pytest.fixture
def http_server() -> Iterator[FixtureServer]:
    """A started FixtureServer on 127.0.0.1, stopped (fast) after the test."""
    server = FixtureServer().start()
    try:
        yield server
    finally:
        server.stop()


def newsflow_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a newsflow subprocess: the session's throwaway Prefect API (the
    prefect_api fixture must be active), no analytics, no NEWSFLOW_* of the caller."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    assert url, "prefect_api fixture did not set an API URL"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSFLOW_", "PREFECT_"))}
    env.update(PREFECT_API_URL=url, PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    return env
