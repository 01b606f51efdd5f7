"""ingest flow: discover, fetch, extract and store every enabled source (or one), live."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import TypeVar

from prefect import flow, get_run_logger, runtime
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import RunStats, begin, finish
from flows.import_warc import run_dedupe_flow
from newsflow.config import load_registry
from newsflow.errors import ConfigError
from newsflow.progress import Progress
from newsflow.types import Article, Candidate, Failure, RawPage, Registry, Source
from storage import writes
from storage.db import db_path, reader
from storage.reads import all_known_urls, due_retries, validators
from tasks.discover import DiscoveryResult, discover_batch
from tasks.extract import extract_batch, extraction_pool
from tasks.fetch import FetchResult, fetch_batch, fetch_session
from tasks.store import guarded_writer, register_sources, store_batch

T = TypeVar("T")
# (url, source, kind, outcome, status, reason, attempts): one row of fetch_attempts.
Exchange = tuple[str, str, str, str, int | None, str | None, int]


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def select_sources(registry: Registry, name: str | None) -> tuple[Source, ...]:
    """The enabled sources, or the one named (an unknown name is a clear error)."""
    if name is None:
        return registry.enabled()
    src = registry.get(name)
    if src is None:
        known = ", ".join(s.name for s in registry.sources)
        raise ConfigError(registry.path, f"no source named {name!r} (known: {known})",
                          key="name")
    return (src,)


def record_discovery(db: str, run_id: str, results: list[DiscoveryResult], stats: RunStats) -> None:
    """Count what discovery found and store its failures, validators and exchanges."""
    attempts: list[Exchange] = []
    for r in results:
        s = stats.of(r.source)
        s.discovered += len(r.candidates)
        s.not_modified += len(r.not_modified)
        stats.add_failures(r.failures)
        attempts += [(u, r.source, "listing", "ok", 200, None, 1) for u in r.validators
                     if u not in r.not_modified]
        attempts += [(u, r.source, "listing", "not_modified", 304, None, 1) for u in r.not_modified]
        attempts += [(f.url, r.source, "listing", "failed", f.status, f.reason, f.attempts)
                     for f in r.failures]
    with guarded_writer(db) as con:
        writes.record_failures(con, [f for r in results for f in r.failures])
        writes.record_attempts(con, run_id, attempts)


def save_validators(db: str, results: list[DiscoveryResult]) -> None:
    """Remember feed validators only once their articles are stored: a run killed mid-fetch must
    not make the next run believe those feeds hold nothing new."""
    with guarded_writer(db) as con:
        writes.save_validators(con, {u: v for r in results for u, v in r.validators.items()})


def split_fetched(fetched: list[FetchResult], stats: RunStats, sources: dict[str, str]
                  ) -> tuple[list[RawPage], list[Failure], list[Exchange]]:
    """Pages to extract, failures to record and the exchange log of one fetched batch."""
    pages: list[RawPage] = []
    failures: list[Failure] = []
    log: list[Exchange] = []
    for f in fetched:
        src = sources.get(f.url, "")
        if f.page is not None:
            pages.append(f.page)
            stats.of(f.page.source).fetched += 1
            log.append((f.url, f.page.source, "page", "ok", f.page.status, None, f.attempts))
        elif f.failure is not None:
            failures.append(f.failure)
            log.append((f.url, f.failure.source, "page", "failed", f.failure.status,
                        f.failure.reason, f.failure.attempts))
        elif f.not_modified:
            stats.of(src).not_modified += 1
            log.append((f.url, src, "page", "not_modified", 304, None, f.attempts))
    return pages, failures, log


@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=4))  # type: ignore[arg-type]
def ingest(source: str | None = None, sources_file: str | None = None, db: str | None = None,
           batch_size: int = 25, workers: int | None = None, run_dedupe: bool = True,
           show_progress: bool = False) -> dict[str, object]:
    """Discover new article URLs of the sources, fetch them politely, extract and store them."""
    logger = get_run_logger()
    registry = load_registry(sources_file)
    sources = select_sources(registry, source)
    dbp = str(db_path(db))
    run_id = str(runtime.flow_run.id or uuid.uuid4())
    register_sources(dbp, registry)
    with reader(dbp) as con:
        known, stored_validators = all_known_urls(con), validators(con)
        retries = due_retries(con, [s.name for s in sources])
    begin(dbp, run_id, "ingest", {"source": source, "sources": registry.path})
    stats = RunStats()
    for s in sources:
        stats.of(s.name)
    pending: tuple[list[RawPage], list[Failure], PrefectFuture] | None = None

    def store(item: tuple[list[RawPage], list[Failure], PrefectFuture]) -> None:
        pages, failures, fut = item
        results_: list[Article | Failure] = fut.result()
        stats.add_outcome(store_batch(dbp, pages, results_, live=True, extra_failures=failures))

    # One Fetcher for discovery and fetching: robots.txt and per-host delays carry over.
    with ExitStack() as stack:
        stack.enter_context(extraction_pool(workers))
        stack.enter_context(fetch_session(registry.fetch, sources))
        results = discover_batch(sources, registry.fetch, known, stored_validators)
        record_discovery(dbp, run_id, results, stats)
        candidates: list[Candidate] = [c for r in results for c in r.candidates]
        # Pages that failed transiently in an earlier run and are due again, even when no feed
        # lists them any more (feeds roll over faster than a backoff of hours).
        found = {c.url for c in candidates}
        candidates += [Candidate(url=u, source=src, found_via="retry") for u, src in retries
                       if u not in found]
        owner = {c.url: c.source for c in candidates}
        logger.info("%d new article URLs from %d sources", len(candidates), len(sources))
        # Fetch batch k+1 while batch k is extracted in the worker processes.
        bar = stack.enter_context(Progress("Fetching", len(candidates), show_progress))
        for n, chunk in enumerate(chunks(candidates, batch_size)):
            bar.advance(len(chunk))
            fetched = fetch_batch([(c.url, c.source) for c in chunk], registry.fetch, sources)
            pages, failures, log = split_fetched(fetched, stats, owner)
            with guarded_writer(dbp) as con:
                writes.record_attempts(con, run_id, log)
            if pending is not None:
                store(pending)
            pending = (pages, failures, extract_batch.submit(pages, label=f"{n:05d}"))
        if pending is not None:
            store(pending)
    save_validators(dbp, results)
    finish(dbp, run_id, "ingest", stats)
    if run_dedupe:
        run_dedupe_flow(dbp, registry.path)
    return stats.as_dict()
