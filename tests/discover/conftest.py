"""Shared fixtures of the discovery tests: fixture files and a few sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsflow.types import Source

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
