"""The import-warc flow under a throwaway Prefect API: real WARC, real DuckDB, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from flows.import_warc import import_warc
from storage.db import reader
from storage.reads import table_counts
from tasks.warc import WarcResponse, write_warc
from tests.conftest import recorded_pages

pytestmark = pytest.mark.usefixtures("prefect_api")
WHEN = datetime(2024, 3, 1, tzinfo=UTC)


def _warc(tmp_path: Path) -> Path:
    pages = recorded_pages()[:4]
    recs = [WarcResponse(url=p.url, fetched_at=WHEN, status=200, content_type="text/html",
                         body=p.html()) for p in pages]
    recs += [
        WarcResponse(url="https://thehill.com/gone", fetched_at=WHEN, status=404,
                     content_type="text/html", body=b"not found"),
        WarcResponse(url="https://thehill.com/report.pdf", fetched_at=WHEN, status=200,
                     content_type="application/pdf", body=b"%PDF-1.5 ..."),
        WarcResponse(url="https://thehill.com/empty", fetched_at=WHEN, status=200,
                     content_type="text/html", body=b""),
    ]
    path = tmp_path / "t.warc.gz"
    write_warc(path, recs)
    return path


def test_import_twice_changes_no_row_count(tmp_path: Path) -> None:
    db, warc = str(tmp_path / "n.duckdb"), _warc(tmp_path)
    first = import_warc(paths=[str(warc)], db=db, workers=1, run_dedupe=False)
    assert first["new_articles"] == 4 and first["failed"] == 3
    with reader(db) as con:
        counts = table_counts(con)
        reasons = dict(con.execute("SELECT url, reason FROM failures").fetchall())
    assert reasons == {"https://thehill.com/gone": "http_404",
                       "https://thehill.com/report.pdf": "not_html",
                       "https://thehill.com/empty": "empty_body"}
    second = import_warc(paths=[str(warc)], db=db, workers=1, run_dedupe=False)
    assert second["new_articles"] == 0 and second["skipped_known"] == 7
    with reader(db) as con:
        assert table_counts(con) == counts


def test_demo_warc_lands_with_sources_and_kinds(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.duckdb")
    warc = resources.files("newsflow").joinpath("data/demo.warc.gz")
    with resources.as_file(warc) as path:
        stats = import_warc(paths=[str(path)], db=db, workers=2, run_dedupe=False)
    assert stats["new_articles"] >= 25
    with reader(db) as con:
        kinds = dict(con.execute("SELECT source, any_value(source_kind) FROM articles "
                                 "GROUP BY source").fetchall())
        fetched = con.execute("SELECT min(fetched_at) FROM articles").fetchone()
    assert kinds["thehill"] == "original"
    assert kinds["vigourtimes"] == "aggregator"
    assert "unknown" in kinds.values()
    assert fetched is not None and fetched[0].year < 2026  # WARC-Date, not the import time
