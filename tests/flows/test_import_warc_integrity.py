"""WARC records that are not whole pages: cut files, WARC-Truncated, revisits and redirects."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from flows.import_warc import import_warc
from storage.db import reader
from tasks.warc import WarcResponse, write_warc
from tests.conftest import RecordedPage, recorded_pages

pytestmark = pytest.mark.usefixtures("prefect_api")
WHEN = datetime(2024, 3, 1, tzinfo=UTC)
PAGES = recorded_pages()[:4]


def _responses(pages: list[RecordedPage]) -> list[WarcResponse]:
    return [WarcResponse(url=p.url, fetched_at=WHEN, status=200, content_type="text/html",
                         body=p.html()) for p in pages]


def _plain(gz: Path) -> Path:
    """The same WARC uncompressed (a gzipped WARC is one gzip member per record)."""
    plain = gz.with_suffix("")
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    return plain


def _odd_records(path: Path) -> None:
    """Append a revisit, a 301 and a record the crawler marked WARC-Truncated (gzipped)."""
    with path.open("ab") as fh:
        w = WARCWriter(fh, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        w.write_record(w.create_revisit_record(
            PAGES[0].url + "?again=1", digest="sha1:AAAA", refers_to_uri=PAGES[0].url,
            refers_to_date="2024-03-01T00:00:00Z", http_headers=http))
        moved = StatusAndHeaders("301 Moved Permanently", [("Location", "/moved/here/")],
                                 protocol="HTTP/1.1")
        w.write_record(w.create_warc_record("https://thehill.com/old-path/", "response",
                                            payload=BytesIO(b""), http_headers=moved))
        w.write_record(w.create_warc_record(
            "https://thehill.com/cut-by-crawler/", "response",
            payload=BytesIO(PAGES[3].html()[:3000]), http_headers=http,
            warc_headers_dict={"WARC-Truncated": "length"}))


def _rows(db: str, sql: str) -> list[tuple[object, ...]]:
    with reader(db) as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
def test_revisits_redirects_and_marked_truncation(tmp_path: Path, compressed: bool) -> None:
    warc = tmp_path / "t.warc.gz"
    write_warc(warc, _responses(PAGES[:3]))
    _odd_records(warc)
    path = warc if compressed else _plain(warc)
    db = str(tmp_path / "n.duckdb")
    stats = import_warc(paths=[str(path)], db=db, workers=1, run_dedupe=False)
    assert stats["new_articles"] == 3
    assert stats["warc_revisits"] == 1 and stats["warc_redirects"] == 1
    assert stats["failed"] == 1  # the truncated record only: a redirect is no failure
    assert _rows(db, "SELECT url, reason, transient FROM failures") == [
        ("https://thehill.com/cut-by-crawler/", "warc_truncated", True)]
    assert _rows(db, "SELECT url, status, location FROM redirects") == [
        ("https://thehill.com/old-path/", 301, "https://thehill.com/moved/here/")]
    assert _rows(db, "SELECT count(*) FROM article_records WHERE url LIKE '%cut-by%'") == [(0,)]


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
def test_a_file_cut_short_stores_the_whole_pages_and_fails_the_cut_one(
        tmp_path: Path, compressed: bool) -> None:
    full = tmp_path / "full.warc.gz"
    write_warc(full, _responses(PAGES))
    src = full if compressed else _plain(full)
    data = src.read_bytes()
    last = data.rfind(b"WARC/1.0") if not compressed else data.rfind(b"\x1f\x8b\x08")
    cut = tmp_path / ("cut.warc.gz" if compressed else "cut.warc")
    cut.write_bytes(data[:last + (len(data) - last) // 2])  # half of the last record
    db, whole_db = str(tmp_path / "cut.duckdb"), str(tmp_path / "whole.duckdb")
    stats = import_warc(paths=[str(cut)], db=db, workers=1, run_dedupe=False)
    assert stats["new_articles"] == len(PAGES) - 1 and stats["failed"] == 1
    assert _rows(db, "SELECT url, reason FROM failures") == [(PAGES[-1].url, "warc_truncated")]
    import_warc(paths=[str(src)], db=whole_db, workers=1, run_dedupe=False)
    texts = "SELECT url, text FROM article_records ORDER BY url"
    assert _rows(db, texts) == [r for r in _rows(whole_db, texts) if r[0] != PAGES[-1].url]
    # The whole file later: the cut page is imported after all (the failure was transient).
    again = import_warc(paths=[str(src)], db=db, workers=1, run_dedupe=False)
    assert again["new_articles"] == 1
    assert _rows(db, "SELECT count(*) FROM failures") == [(0,)]
