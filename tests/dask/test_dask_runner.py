"""import-warc on a Dask cluster (prefect-dask DaskTaskRunner): the same articles as the default path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flows.import_warc import import_warc
from storage.db import reader
from tasks.extract_pool import dask_runner, task_runner
from tasks.warc import WarcResponse, write_warc
from tests.conftest import recorded_pages

distributed = pytest.importorskip("distributed")
pytest.importorskip("prefect_dask")

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.slow]
WHEN = datetime(2024, 3, 1, tzinfo=UTC)
ARTICLE_COLUMNS = ("article_id, url, source, canonical_url, title, author, published_at, "
                   "date_trusted, language, text, links")


def _warc(tmp_path: Path) -> Path:
    recs = [WarcResponse(url=p.url, fetched_at=WHEN, status=200, content_type="text/html",
                         body=p.html()) for p in recorded_pages()]
    recs.append(WarcResponse(url="https://thehill.com/gone", fetched_at=WHEN, status=404,
                             content_type="text/html", body=b"not found"))
    path = tmp_path / "pages.warc.gz"
    write_warc(path, recs)
    return path


def _articles(db: Path) -> list[tuple[Any, ...]]:
    with reader(db) as con:
        return con.execute(f"SELECT {ARTICLE_COLUMNS} FROM article_records ORDER BY article_id").fetchall()


def test_import_warc_on_a_local_dask_cluster_matches_the_default_path(tmp_path: Path) -> None:
    warc = _warc(tmp_path)
    default_db, dask_db = tmp_path / "default.duckdb", tmp_path / "dask.duckdb"
    base = import_warc(paths=[str(warc)], db=str(default_db), workers=2, batch_size=4, run_dedupe=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        workers = list(client.scheduler_info()["workers"])
        on_dask = import_warc.with_options(task_runner=dask_runner(cluster.scheduler_address))
        with distributed.get_task_stream(client) as stream:
            stats = on_dask(paths=[str(warc)], db=str(dask_db), batch_size=4, run_dedupe=False)
    # The extraction ran on the Dask workers: one Dask task per batch of 4 records.
    assert len(stream.data) >= 14 // 4
    assert {t["worker"] for t in stream.data} <= set(workers)
    assert stats["new_articles"] == base["new_articles"] == len(recorded_pages())
    assert stats["failed"] == base["failed"] == 1
    assert _articles(dask_db) == _articles(default_db)


def test_task_runner_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from newsflow.errors import ConfigError

    monkeypatch.delenv("NEWSFLOW_TASK_RUNNER", raising=False)
    monkeypatch.delenv("NEWSFLOW_DASK_ADDRESS", raising=False)
    assert isinstance(task_runner(), ThreadPoolTaskRunner)
    monkeypatch.setenv("NEWSFLOW_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    runner = task_runner()
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://127.0.0.1:8786"
    monkeypatch.setenv("NEWSFLOW_TASK_RUNNER", "celery")
    with pytest.raises(ConfigError):
        task_runner()
