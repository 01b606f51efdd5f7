"""Fixtures of the DuckLake tests: a throwaway PostgreSQL for the catalog (stopped after the
session), a fresh database and data path per test; skipped with the reason where PostgreSQL or
the lake packages are missing."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fixtures import newsflow_env
from tests.support.postgres import PASSWORD, Postgres, Unavailable, throwaway_postgres

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL 15 server for the session, scram-sha-256 on 127.0.0.1, removed after."""
    try:
        server = throwaway_postgres()
        pg = server.__enter__()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield pg
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def lake_db(postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty lake: its own PostgreSQL database, its data path under tmp_path."""
    name = f"lake_{os.getpid()}_{next(_names)}"
    postgres.create_database(name)
    monkeypatch.setenv("NEWSFLOW_DATA_PATH", str(tmp_path / "lake-data"))
    return postgres.url(name)


@pytest.fixture
def lake_env(prefect_api: None, lake_db: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a newsflow subprocess on the lake: the session's Prefect API, the
    catalog's password, the data path."""
    env = newsflow_env(tmp_path)
    env.update(PGPASSWORD=PASSWORD, NEWSFLOW_DATA_PATH=str(tmp_path / "lake-data"))
    return env
