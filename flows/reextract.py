"""reextract flow: run extraction again over the stored raw HTML (after a trafilatura upgrade)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from prefect import flow, get_run_logger, runtime
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import RunStats, announce, begin, finish, run_dedupe_flow
from flows.pipeline import pipelined
from newsflow.config import load_registry
from newsflow.progress import Progress
from newsflow.types import Article, Failure, RawPage
from storage import writes
from storage.db import db_path, reader
from storage.memory import retry_out_of_memory
from storage.reads import read_pages, stored_page_urls
from tasks.extract_pool import default_workers, extract_batch, extraction_pool
from tasks.store import guarded_writer


def page_batches(db: str, source: str | None, size: int) -> Iterator[list[RawPage]]:
    """Stored pages in batches, each read on its own short read-only connection.

    Streaming one cursor over every page would hold a reader open for the whole
    run, and an open reader blocks every writer, this flow's own included.
    """
    with reader(db) as con:
        urls = stored_page_urls(con, source)
    for i in range(0, len(urls), size):
        with reader(db) as con:
            pages = read_pages(con, urls[i:i + size])
        if pages:
            yield pages


@retry_out_of_memory("store re-extracted articles")
def store_reextracted(db: str, results: list[Article | Failure], stats: RunStats) -> int:
    """Replace the articles of one batch; returns how many articles were re-extracted.

    A page that fails now but had an article keeps its old article (an upgrade must not lose
    data); failures are only counted, they were recorded when the page was first stored.
    """
    articles = [r for r in results if isinstance(r, Article)]
    with guarded_writer(db) as con:
        new_ids = set(writes.store_articles(con, articles, replace=True))
    for a in articles:
        if a.article_id in new_ids:
            stats.of(a.source).new_articles += 1
            stats.new_article_ids.append(a.article_id)
    stats.add_failures(r for r in results if isinstance(r, Failure))
    return len(articles)


@flow(name="reextract", task_runner=ThreadPoolTaskRunner(max_workers=4))  # type: ignore[arg-type]
def reextract(source: str | None = None, db: str | None = None, sources_file: str | None = None,
              batch_size: int = 100, workers: int | None = None, run_dedupe: bool = True,
              show_progress: bool = False) -> dict[str, object]:
    """Re-extract every stored raw page (of one source) and replace the stored articles."""
    logger = get_run_logger()
    dbp = str(db_path(db))
    run_id = "reextract-" + str(runtime.flow_run.id or uuid.uuid4())
    begin(dbp, run_id, "reextract", {"source": source})
    stats = RunStats()
    reextracted = 0
    workers = default_workers() if workers is None else workers
    total = 0
    if show_progress:  # the bar's total: one more short read of the URL list
        with reader(dbp) as con:
            total = len(stored_page_urls(con, source))
    with extraction_pool(workers), Progress("Re-extracting", total, show_progress) as bar:
        numbered = enumerate(page_batches(dbp, source, batch_size))
        # Bounded: memory stays flat on big databases.
        for (_, pages), results in pipelined(numbered, lambda b: extract_batch.submit(
                b[1], label=f"{b[0]:05d}"), ahead=2 * max(workers, 1)):
            bar.advance(len(pages))
            for p in pages:  # "fetched" here: read back from raw_pages
                stats.of(p.source).fetched += 1
            reextracted += store_reextracted(dbp, results, stats)
    logger.info("re-extracted %d articles (%d new), %d pages failed extraction",
                reextracted, stats.new_articles, stats.failed)
    finish(dbp, run_id, "reextract", stats)
    if run_dedupe:
        run_dedupe_flow(dbp, load_registry(sources_file).path)
    # The same event as ingest: the dedupe deployment re-runs on the new text, unless done here.
    announce(dbp, run_id, "reextract", stats, deduped=run_dedupe)
    return {**stats.as_dict(), "reextracted": reextracted}
