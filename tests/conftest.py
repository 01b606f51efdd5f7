"""Project-wide fixtures: a throwaway Prefect API for flow tests, the local HTTP server, pages."""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.fixtures import http_server  # noqa: F401  (shared fixture)

DATA = Path(__file__).resolve().parent / "data"
PAGES = DATA / "pages"

# Tests must never write to the user's Prefect database or send analytics.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A throwaway Prefect API server for the session (started once), heartbeats off."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), \
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture(scope="session", autouse=True)
def fast_trafilatura() -> None:
    """trafilatura as the product runs it (the CLI and the extraction workers install this)."""
    from tasks import trafilatura_fast

    trafilatura_fast.install()


@dataclass(frozen=True)
class RecordedPage:
    """A real page copied from the corpus, with what its extracted text must (not) contain."""

    file: str
    url: str
    title: str
    author: str
    date: str
    expect: str
    expect_not: str

    def html(self) -> bytes:
        return gzip.decompress((PAGES / self.file).read_bytes())


def recorded_pages() -> list[RecordedPage]:
    """The pages listed in tests/data/pages/MANIFEST.tsv."""
    with (PAGES / "MANIFEST.tsv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [RecordedPage(file=r["file"], url=r["url"], title=r["title"], author=r["author"],
                         date=r["date"], expect=r["expect"], expect_not=r["expect_not"])
            for r in rows]
