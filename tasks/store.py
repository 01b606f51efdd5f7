"""Prefect tasks around storage writes: one short transaction per batch, behind the writer limit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE

from newsflow.settings import settings
from newsflow.types import Article, Failure, RawPage, Registry
from storage import writes
from storage.db import writer
from storage.lake import is_lake
from storage.memory import retry_out_of_memory
from tasks.retry import retry_if_transient


@contextmanager
def guarded_writer(db: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writer transaction, inside the Prefect global concurrency limit when one is configured."""
    # Deployments set $NEWSFLOW_WRITER_LIMIT to the limit `newsflow deploy` created; strict=True
    # makes a missing limit an error instead of silently not locking (see docs/orchestration.md).
    limit = settings().writer_limit
    if not limit or is_lake(db):  # a lake's writers need no turns: see storage.db.writer
        with writer(db) as con:
            yield con
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(limit, occupy=1, strict=True), writer(db) as con:
        yield con


@dataclass(kw_only=True)
class BatchOutcome:
    """What one stored batch added, per source."""

    new_articles: Counter[str] = field(default_factory=Counter)
    stored_pages: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    new_article_ids: list[str] = field(default_factory=list)


@retry_out_of_memory("store a batch of pages")
def store_results(db: str, pages: Sequence[RawPage], results: Sequence[Article | Failure], *,
                  live: bool, extra_failures: Sequence[Failure] = ()) -> BatchOutcome:
    """Write raw pages, new articles and failures of one batch in one transaction."""
    articles = [r for r in results if isinstance(r, Article)]
    failures = [r for r in results if isinstance(r, Failure)] + list(extra_failures)
    out = BatchOutcome(failures=failures)
    with guarded_writer(db) as con:
        # Leave the batch in the WAL at close instead of checkpointing: the close-time checkpoint
        # grows with the table, which made big imports quadratic and spiked memory. DuckDB still
        # checkpoints inside a commit once the WAL passes 16 MB, and the run's other writes
        # (finish) checkpoint when they close.
        writes.skip_shutdown_checkpoint(con)
        writes.store_pages(con, pages)
        new_ids = set(writes.store_articles(con, articles))
        if live:
            writes.record_failures(con, failures)
        else:
            writes.record_import_failures(con, failures)
    for p in pages:
        out.stored_pages[p.source] += 1
    for a in articles:
        if a.article_id in new_ids:
            new_ids.discard(a.article_id)
            out.new_articles[a.source] += 1
            out.new_article_ids.append(a.article_id)
    return out


@retry_out_of_memory("store WARC redirects")
def store_redirects(db: str, rows: Sequence[tuple[str, str, int, str | None]]) -> None:
    """Keep (url, source, status, location) of a WARC's 3xx records, in one transaction."""
    with guarded_writer(db) as con:
        writes.record_redirects(con, rows)


@task(name="store-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=retry_if_transient)
def store_batch(db: str, pages: list[RawPage], results: list[Article | Failure], live: bool,
                extra_failures: list[Failure] | None = None) -> BatchOutcome:
    """Prefect task: store one batch; retried when the database stays locked."""
    return store_results(db, pages, results, live=live, extra_failures=extra_failures or [])


@task(name="register-sources", cache_policy=NO_CACHE)
def register_sources(db: str, registry: Registry) -> None:
    """Mirror sources.toml into the database (creating and migrating it when new)."""
    mirror_sources(db, registry)


@retry_out_of_memory("upsert the sources of sources.toml")
def mirror_sources(db: str, registry: Registry) -> None:
    """Mirror sources.toml into the database in one writer transaction."""
    with guarded_writer(db) as con:
        writes.upsert_sources(con, registry)
