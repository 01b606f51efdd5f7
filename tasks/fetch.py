"""HTTP fetching with one requests Session: timeouts, retries for transient errors, politeness.

INTERFACE STUB: being implemented (see the fetch work item). Signatures are the contract.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsflow.types import Failure, FetchSettings, RawPage, Source


@dataclass(kw_only=True)
class FetchResult:
    """Exactly one of: a page, a 304 (not_modified), or a recorded failure."""

    url: str
    page: RawPage | None = None
    failure: Failure | None = None
    not_modified: bool = False


class Fetcher:
    """One requests Session shared by a run; polite per host; never raises for a bad URL."""

    def __init__(self, settings: FetchSettings, sources: tuple[Source, ...] = ()) -> None:
        raise NotImplementedError

    def fetch(self, url: str, *, source: str, etag: str | None = None,
              last_modified: str | None = None) -> FetchResult:
        raise NotImplementedError

    def fetch_many(self, urls: list[tuple[str, str]]) -> list[FetchResult]:
        """Fetch (url, source) pairs, in parallel across hosts, polite within one host."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
