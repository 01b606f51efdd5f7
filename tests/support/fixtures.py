"""Shared pytest fixtures: `from tests.support.fixtures import http_server` in a conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

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
