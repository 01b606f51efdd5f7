"""NEWSFLOW_* settings: parsed and checked once, a bad value named, changes seen by settings()."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from newsflow.errors import ConfigError
from newsflow.settings import Settings, settings

EVERY = {
    "NEWSFLOW_DB": " data/news.duckdb ",
    "NEWSFLOW_DATA_PATH": "/shared/lake",
    "NEWSFLOW_SOURCES": "my-sources.toml",
    "NEWSFLOW_DB_MEMORY": "1.5 GiB",
    "NEWSFLOW_DB_WAIT": "2.5",
    "NEWSFLOW_WRITER_LIMIT": "newsflow-duckdb-writer",
    "NEWSFLOW_WORKERS": "3",
    "NEWSFLOW_TASK_RUNNER": "Threads",
    "NEWSFLOW_DASK_ADDRESS": "tcp://scheduler:8786",
    "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "10.0.0.0/8, 127.0.0.1",
    "NEWSFLOW_STOCK_TRAFILATURA": "yes",
}


def test_unset_or_blank_variables_leave_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env(dict.fromkeys(EVERY, "  ")) == Settings()
    assert Settings().task_runner == "threads" and Settings().allow_private_networks == ()


def test_every_variable_is_parsed_to_its_type() -> None:
    assert set(EVERY) == set(Settings.variables().values())
    assert Settings.from_env(EVERY) == Settings(
        db="data/news.duckdb", data_path=Path("/shared/lake"), sources=Path("my-sources.toml"),
        db_memory="1.5 GiB",
        db_wait=2.5, writer_limit="newsflow-duckdb-writer", workers=3, task_runner="threads",
        dask_address="tcp://scheduler:8786", stock_trafilatura=True,
        allow_private_networks=(ipaddress.ip_network("10.0.0.0/8"),
                                ipaddress.ip_network("127.0.0.1/32")))


@pytest.mark.parametrize(("value", "allowed"), [("1", True), ("TRUE", True), ("0", False),
                                                 ("off", False)])
def test_private_networks_can_be_switched_on_or_off(value: str, allowed: bool) -> None:
    assert Settings.from_env({"NEWSFLOW_ALLOW_PRIVATE_NETWORKS": value}).allow_private_networks is allowed


def test_a_dask_address_implies_the_dask_runner_unless_one_is_named() -> None:
    address = {"NEWSFLOW_DASK_ADDRESS": "tcp://127.0.0.1:8786"}
    assert Settings.from_env(address).task_runner == "dask"
    assert Settings.from_env({**address, "NEWSFLOW_TASK_RUNNER": "threads"}).task_runner == "threads"


@pytest.mark.parametrize(("variable", "value", "why"), [
    ("NEWSFLOW_DB_WAIT", "soon", "a number of seconds"),
    ("NEWSFLOW_DB_WAIT", "-1", "0 or more"),
    ("NEWSFLOW_DB_WAIT", "nan", "0 or more"),
    ("NEWSFLOW_WORKERS", "2.5", "a whole number"),
    ("NEWSFLOW_WORKERS", "-2", "0 or more"),
    ("NEWSFLOW_DB_MEMORY", "512", "memory size"),
    ("NEWSFLOW_DB_MEMORY", "lots", "memory size"),
    ("NEWSFLOW_TASK_RUNNER", "celery", "threads or dask"),
    ("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "10.0.0.0/8,intranet", "'intranet' is not an address"),
    ("NEWSFLOW_STOCK_TRAFILATURA", "please", "1/true/yes/on or 0/false/no/off"),
])
def test_a_bad_value_is_one_error_naming_the_variable(variable: str, value: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**EVERY, variable: value})
    assert str(caught.value).startswith(f"${variable}: {value!r}: ")
    assert why in str(caught.value)


def test_settings_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests and `newsflow serve` set variables in-process: the next settings() call sees them.
    monkeypatch.setenv("NEWSFLOW_WORKERS", "2")
    first = settings()
    assert first.workers == 2 and settings() is first  # parsed once while nothing changes
    monkeypatch.setenv("NEWSFLOW_WORKERS", "5")
    assert settings().workers == 5
    monkeypatch.setenv("NEWSFLOW_WORKERS", "five")
    with pytest.raises(ConfigError, match=r"\$NEWSFLOW_WORKERS"):
        settings()
    monkeypatch.delenv("NEWSFLOW_WORKERS")
    assert settings().workers is None
