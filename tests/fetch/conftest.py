"""Fixtures of the fetch tests: the shared HTTP server, fast settings, a Fetcher factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from newsflow.types import FetchSettings, Source
from tasks.fetch import Fetcher
from tests.support.fixtures import http_server  # noqa: F401  (re-exported fixture)

# Small timeouts keep the hostile-server tests fast; 127.0.0.1 needs private networks allowed.
FAST = FetchSettings(connect_timeout=1.0, read_timeout=0.5, total_timeout=1.5,
                     max_bytes=1_000_000, retries=2, backoff=0.01,
                     allow_private_networks=True, obey_robots=True)


def local_source(name: str = "local", *, min_delay: float = 0.0, max_concurrency: int = 2,
                 domains: tuple[str, ...] = ("127.0.0.1",)) -> Source:
    """A source for the loopback test server, with no politeness delay unless asked."""
    return Source(name=name, publisher=name, kind="original", domains=domains,
                  min_delay=min_delay, max_concurrency=max_concurrency)


MakeFetcher = Callable[..., Fetcher]


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's NEWSFLOW_ALLOW_PRIVATE_NETWORKS must not change what the tests check."""
    monkeypatch.delenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", raising=False)


@pytest.fixture
def make_fetcher() -> Iterator[MakeFetcher]:
    """make_fetcher(sources=..., **FetchSettings overrides) -> Fetcher, closed after the test."""
    made: list[Fetcher] = []

    def make(sources: tuple[Source, ...] = (local_source(),), **overrides: object) -> Fetcher:
        fetcher = Fetcher(replace(FAST, **overrides), sources)  # type: ignore[arg-type]
        made.append(fetcher)
        return fetcher

    yield make
    for f in made:
        f.close()
