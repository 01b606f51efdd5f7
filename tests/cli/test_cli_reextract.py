"""`newsflow reextract`: the re-extraction flow from the command line, on a real import."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flows.import_warc import import_warc
from storage.db import reader, writer
from tasks.warc import WarcResponse, write_warc
from tests.cli.conftest import run_cli
from tests.conftest import recorded_pages

WHEN = datetime(2024, 3, 1, tzinfo=UTC)


def test_reextract_replaces_the_stored_articles(tmp_path: Path, cli_env: dict[str, str]) -> None:
    pages = recorded_pages()[:3]
    warc = tmp_path / "t.warc.gz"
    write_warc(warc, [WarcResponse(url=p.url, fetched_at=WHEN, status=200,
                                   content_type="text/html", body=p.html()) for p in pages])
    db = str(tmp_path / "n.duckdb")
    import_warc(paths=[str(warc)], db=db, workers=1, run_dedupe=False)
    with writer(db) as con:  # as an older extractor might have left them
        con.execute("UPDATE article_records SET text = 'stale', extractor = 'old'")
    r = run_cli("reextract", "--db", db, "--workers", "1", "--source", "thehill", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert "2 articles re-extracted" in r.stdout and "Re-extracting" in r.stderr
    with reader(db) as con:
        rows = con.execute("SELECT source, extractor = 'old' FROM article_records").fetchall()
    assert sorted(rows) == [("kxan", True), ("thehill", False), ("thehill", False)]


def test_reextract_names_what_is_wrong(tmp_path: Path) -> None:
    r = run_cli("reextract", "--db", str(tmp_path / "none.duckdb"))
    assert r.returncode == 1 and "none.duckdb" in r.stderr and "Traceback" not in r.stderr
    db = str(tmp_path / "n.duckdb")
    with writer(db):
        pass
    r = run_cli("reextract", "--db", db, "--source", "nosuchsite")
    assert r.returncode == 1 and "'nosuchsite': no such source in" in r.stderr
    assert "Traceback" not in r.stderr
