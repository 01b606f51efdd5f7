"""import-warc with a registry of 10,000 sources, on a real DuckDB file (it once crashed at 190)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.import_warc import import_warc
from newsflow.urls import host_of
from storage.db import reader
from tasks.warc import WarcResponse, write_warc
from tests.conftest import recorded_pages

pytestmark = pytest.mark.usefixtures("prefect_api")
WHEN = datetime(2024, 3, 1, tzinfo=UTC)
N_SOURCES = 10_000


def write_registry(path: Path, hosts: list[str], n: int) -> Path:
    """A sources.toml of n sources: one per host of hosts, then synthetic ones, every key set."""
    names = {h: h.split(".")[0] for h in hosts}
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            host = hosts[i] if i < len(hosts) else f"site{i:05d}.example"
            name = names.get(host, f"site{i:05d}")
            fh.write(f'[[sources]]\nname = "{name}"\npublisher = "Publisher {i}"\n'
                     f'kind = "original"\ndomains = ["{host}"]\n'
                     f'feeds = ["https://{host}/feed/", "https://{host}/rss.xml"]\n'
                     f'sitemaps = ["https://{host}/news-sitemap.xml"]\n'
                     f'pages = ["https://{host}/news/"]\n\n')
    return path


def test_import_with_ten_thousand_sources(tmp_path: Path) -> None:
    pages = recorded_pages()[:6]
    hosts = sorted({host_of(p.url) for p in pages})
    reg = write_registry(tmp_path / "sources.toml", hosts, N_SOURCES)
    warc = tmp_path / "t.warc.gz"
    write_warc(warc, [WarcResponse(url=p.url, fetched_at=WHEN, status=200,
                                   content_type="text/html", body=p.html()) for p in pages])
    db = str(tmp_path / "news.duckdb")
    stats = import_warc(paths=[str(warc)], sources_file=str(reg), db=db, workers=1)
    assert stats["new_articles"] == len(pages) and stats["failed"] == 0
    again = import_warc(paths=[str(warc)], sources_file=str(reg), db=db, workers=1)
    assert again["new_articles"] == 0 and again["skipped_known"] == len(pages)
    with reader(db) as con:
        assert con.execute("SELECT count(*) FROM sources").fetchone() == (N_SOURCES,)
        kinds = con.execute("SELECT DISTINCT source, source_kind FROM articles").fetchall()
        assert con.execute("SELECT count(*) FROM stories").fetchone()[0] >= 1  # type: ignore[index]
    assert sorted(kinds) == sorted((h.split(".")[0], "original") for h in hosts)
