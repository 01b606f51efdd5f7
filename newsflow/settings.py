"""newsflow's settings: every NEWSFLOW_* environment variable, parsed and checked in one place.

Code reads `settings().db`, never os.environ. settings() parses the environment once and
parses it again only when one of these variables has changed since (a test's
monkeypatch.setenv, `newsflow serve` handing the writer limit to its runs): nothing to refresh
by hand. docs/settings.md lists the variables; a test keeps that table and Settings in step.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from newsflow.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
TaskRunnerKind = Literal["threads", "dask"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# A DuckDB memory size, in the units DuckDB's memory_limit accepts ("64MB", "1.5 GiB", "512m").
_SIZE = re.compile(r"[0-9]+(\.[0-9]+)?\s*(b|bytes?|[kmgt]b?|[kmgt]ib|(kilo|mega|giga|tera)bytes?)", re.I)


def _flag(raw: str) -> bool:
    """A switch: on or off."""
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError("expected 1/true/yes/on or 0/false/no/off")


def _size(raw: str) -> str:
    """A DuckDB memory size, kept as written."""
    if not _SIZE.fullmatch(raw):
        raise ValueError("expected a DuckDB memory size such as 64MB or 1GiB")
    return raw


def _seconds(raw: str) -> float:
    """A duration in seconds, 0 or more."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not value >= 0:  # also rejects nan
        raise ValueError("expected a number of seconds, 0 or more")
    return value


def _count(raw: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None
    if value < 0:
        raise ValueError("expected a whole number, 0 or more")
    return value


def _runner(raw: str) -> TaskRunnerKind:
    """threads or dask, in any case."""
    if raw.lower() == "threads":
        return "threads"
    if raw.lower() == "dask":
        return "dask"
    raise ValueError("unknown task runner (threads or dask)")


def _networks(raw: str) -> bool | tuple[IPNetwork, ...]:
    """A switch (every private address, or none), or a list of addresses and networks."""
    if raw.lower() in _TRUE or raw.lower() in _FALSE:
        return raw.lower() in _TRUE
    nets = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an address or network (like 10.0.0.0/8), "
                             "and the whole value is not 1 or 0") from None
    return tuple(nets)


def _var(name: str, parse: Callable[[str], Any], default: Any = None) -> Any:
    """A Settings field read from the environment variable `name` (unset or blank: default)."""
    return field(default=default, metadata={"env": name, "parse": parse})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every NEWSFLOW_* variable the product reads, typed; None means the built-in default."""

    # A DuckDB file, or a DuckLake URL (`ducklake:postgres:dbname=...`, `ducklake:meta.ducklake`).
    db: str | None = _var("NEWSFLOW_DB", str)
    data_path: Path | None = _var("NEWSFLOW_DATA_PATH", Path)
    sources: Path | None = _var("NEWSFLOW_SOURCES", Path)
    db_memory: str | None = _var("NEWSFLOW_DB_MEMORY", _size)
    db_wait: float | None = _var("NEWSFLOW_DB_WAIT", _seconds)
    writer_limit: str | None = _var("NEWSFLOW_WRITER_LIMIT", str)
    workers: int | None = _var("NEWSFLOW_WORKERS", _count)
    task_runner: TaskRunnerKind = _var("NEWSFLOW_TASK_RUNNER", _runner, "threads")
    dask_address: str | None = _var("NEWSFLOW_DASK_ADDRESS", str)
    # True: the fetcher may reach every private address; else the networks it may reach besides
    # public addresses (none by default).
    allow_private_networks: bool | tuple[IPNetwork, ...] = _var(
        "NEWSFLOW_ALLOW_PRIVATE_NETWORKS", _networks, ())
    stock_trafilatura: bool = _var("NEWSFLOW_STOCK_TRAFILATURA", _flag, False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Parse and check the variables in environ; a bad value raises ConfigError naming it."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                raise ConfigError(f"${name}", f"{raw!r}: {exc}") from None
        if "task_runner" not in values and values.get("dask_address"):
            values["task_runner"] = "dask"  # a scheduler address implies the Dask runner
        return cls(**values)

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Each field's environment variable, by field name."""
        return {f.name: f.metadata["env"] for f in fields(cls)}


VARIABLES = tuple(Settings.variables().values())
_cache: tuple[tuple[str | None, ...], Settings] | None = None


def settings() -> Settings:
    """This process's settings, from os.environ: parsed again only when a variable changed."""
    global _cache
    raw = tuple(os.environ.get(name) for name in VARIABLES)
    cached = _cache
    if cached is None or cached[0] != raw:
        cached = (raw, Settings.from_env(os.environ))
        _cache = cached
    return cached[1]
