"""The reextract flow over stored raw HTML, and `newsflow serve`'s deployments matching prefect.yaml."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.deploy import load_spec, runner_deployments
from flows.import_warc import import_warc
from flows.reextract import reextract
from newsflow.errors import InputFileError
from storage.db import reader, writer
from tasks.warc import WarcResponse, write_warc
from tests.conftest import RecordedPage, recorded_pages

WHEN = datetime(2024, 3, 1, tzinfo=UTC)


def _warc(tmp_path: Path, pages: list[RecordedPage]) -> Path:
    """A WARC of the recorded pages, as 200 responses."""
    warc = tmp_path / "t.warc.gz"
    write_warc(warc, [WarcResponse(url=p.url, fetched_at=WHEN, status=200, content_type="text/html",
                                   body=p.html()) for p in pages])
    return warc


@pytest.mark.usefixtures("prefect_api")
def test_reextract_replaces_stale_text_and_restores_lost_articles(tmp_path: Path) -> None:
    pages = recorded_pages()[:5]
    warc = _warc(tmp_path, pages)
    db = str(tmp_path / "news.duckdb")
    import_warc(paths=[str(warc)], db=db, workers=1, run_dedupe=False)
    with reader(db) as con:
        before = dict(con.execute("SELECT url, text FROM article_records").fetchall())
    assert len(before) == 5
    lost = pages[0].url
    with writer(db) as con:  # as if an older extractor had got them wrong, or dropped one
        con.execute("UPDATE article_records SET text = 'stale', extractor = 'old'")
        con.execute("DELETE FROM article_records WHERE url = ?", [lost])
    stats = reextract(db=db, batch_size=2, workers=1, run_dedupe=False)
    assert stats["reextracted"] == 5 and stats["new_articles"] == 1 and stats["failed"] == 0
    with reader(db) as con:
        after = dict(con.execute("SELECT url, text FROM article_records").fetchall())
        extractors = {r[0] for r in con.execute("SELECT extractor FROM article_records").fetchall()}
        run = con.execute("SELECT status FROM runs WHERE flow = 'reextract'").fetchall()
    assert after == before and extractors == {"trafilatura"}
    assert run == [("completed",)]


@pytest.mark.usefixtures("prefect_api")
def test_raw_pages_point_at_the_warc_unless_copied(tmp_path: Path) -> None:
    warc = _warc(tmp_path, recorded_pages()[:2])
    pointed, copied = str(tmp_path / "pointed.duckdb"), str(tmp_path / "copied.duckdb")
    import_warc(paths=[str(warc)], db=pointed, workers=1, run_dedupe=False)
    import_warc(paths=[str(warc)], db=copied, workers=1, run_dedupe=False, copy_raw=True)
    with reader(pointed) as con:
        refs = con.execute("SELECT DISTINCT body_codec, warc_file, octet_length(body) "
                           "FROM raw_pages").fetchall()
    assert refs == [("warc", str(warc.resolve()), 0)]
    assert reextract(db=pointed, workers=1, run_dedupe=False)["reextracted"] == 2  # read from the WARC
    warc.unlink()
    assert reextract(db=copied, workers=1, run_dedupe=False)["reextracted"] == 2
    with pytest.raises(InputFileError, match="moved or deleted") as err:
        reextract(db=pointed, workers=1, run_dedupe=False)
    assert err.value.path == str(warc.resolve())


def test_serve_uses_the_schedules_and_triggers_of_prefect_yaml() -> None:
    spec = load_spec()
    served = {d.name: d for d in runner_deployments(spec)}
    assert set(served) == {d["name"] for d in spec["deployments"]}
    assert [s.schedule.cron for s in served["ingest"].schedules] == ["*/15 * * * *"]
    assert served["ingest"].parameters == {"run_dedupe": False}
    assert served["ingest"].concurrency_limit == 1
    (trigger,) = served["dedupe"].triggers
    assert trigger.expect == {"news.articles.ingested"}
    assert trigger.parameters == {"db": "{{ event.payload.db }}"}
    assert not served["dedupe"].schedules and not served["reextract"].schedules
