"""Shared fixtures of the discovery tests: fixture files and a few sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsflow.types import Source
from tests.support.fixtures import http_server  # noqa: F401  (re-exported fixture)

DATA = Path(__file__).resolve().parents[1] / "data" / "discover"


def read(name: str) -> bytes:
    """Bytes of a fixture file in tests/data/discover/."""
    return (DATA / name).read_bytes()


@pytest.fixture
def kxan() -> Source:
    return Source(name="kxan", publisher="Nexstar Media", kind="syndicator", domains=("kxan.com",))


@pytest.fixture
def thehill() -> Source:
    return Source(name="thehill", publisher="Nexstar Media", kind="original",
                  domains=("thehill.com",))


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's NEWSFLOW_ALLOW_PRIVATE_NETWORKS must not change what the tests check."""
    monkeypatch.delenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", raising=False)
