"""ingest flow: discover, fetch, extract and store every enabled source (or one), live."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import Any, TypeVar

import duckdb
from prefect import flow, get_run_logger, runtime
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import RunStats, announce, close_run, publish
from flows.pipeline import pipelined
from newsflow.config import load_registry
from newsflow.errors import ConfigError
from newsflow.progress import Progress
from newsflow.types import Candidate, Failure, RawPage, Registry, Source
from storage import writes
from storage.db import db_path
from storage.memory import retry_out_of_memory
from storage.reads import dedupe_pending, due_retries, stored_urls, validators
from tasks.discover import DiscoveryResult, discover_batch
from tasks.extract_pool import extract_batch, extraction_pool
from tasks.fetch import FetchResult, fetch_batch, fetch_session
from tasks.store import guarded_writer, store_batch

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


def open_run(con: duckdb.DuckDBPyConnection, run_id: str, registry: Registry,
             sources: tuple[Source, ...], params: dict[str, Any]
             ) -> tuple[dict[str, tuple[str | None, str | None, str | None]], list[tuple[str, str]]]:
    """Mirror sources.toml, start the run record, read the feed validators and due retries."""
    # The run's closing transaction checkpoints; one here too would only add to every run.
    writes.skip_shutdown_checkpoint(con)
    writes.upsert_sources(con, registry)
    writes.start_run(con, run_id, "ingest", params)
    return validators(con), due_retries(con, [s.name for s in sources])


def drop_known(con: duckdb.DuckDBPyConnection, results: list[DiscoveryResult]) -> None:
    """Drop candidates stored already (or failed for good): only the listed URLs are looked up,
    never the whole store's URL set."""
    known = stored_urls(con, [c.url for r in results for c in r.candidates])
    if known:
        for r in results:
            r.candidates = [c for c in r.candidates if c.url not in known]


def count_discovery(results: list[DiscoveryResult], stats: RunStats) -> None:
    """Count what discovery found (once: outside the writer bodies, which may run again)."""
    for r in results:
        s = stats.of(r.source)
        s.discovered += len(r.candidates)
        s.not_modified += len(r.not_modified)
        stats.add_failures(r.failures)


def record_discovery(con: duckdb.DuckDBPyConnection, run_id: str, results: list[DiscoveryResult]
                     ) -> None:
    """Store discovery's failures and exchanges."""
    attempts: list[Exchange] = []
    for r in results:
        attempts += [(u, r.source, "listing", "ok", 200, None, 1) for u in r.validators
                     if u not in r.not_modified]
        attempts += [(u, r.source, "listing", "not_modified", 304, None, 1) for u in r.not_modified]
        attempts += [(f.url, r.source, "listing", "failed", f.status, f.reason, f.attempts)
                     for f in r.failures]
    writes.record_failures(con, [f for r in results for f in r.failures])
    writes.record_attempts(con, run_id, attempts)


# The flow's own writer bodies, each one transaction that may run again (on a DuckLake whose
# commit another writer won, or out of memory).
@retry_out_of_memory("open the ingest run")
def begin_ingest(db: str, run_id: str, registry: Registry, sources: tuple[Source, ...],
                 params: dict[str, Any]
                 ) -> tuple[dict[str, tuple[str | None, str | None, str | None]], list[tuple[str, str]]]:
    with guarded_writer(db) as con:
        return open_run(con, run_id, registry, sources, params)


@retry_out_of_memory("record discovery")
def store_discovery(db: str, run_id: str, results: list[DiscoveryResult]) -> None:
    with guarded_writer(db) as con:
        drop_known(con, results)
        record_discovery(con, run_id, results)


@retry_out_of_memory("record fetch attempts")
def store_attempts(db: str, run_id: str, log: list[Exchange]) -> None:
    with guarded_writer(db) as con:
        writes.record_attempts(con, run_id, log)


@retry_out_of_memory("close the ingest run")
def settle(db: str, run_id: str, results: list[DiscoveryResult], stats: RunStats, *,
           recorded: bool, check_dedupe: bool) -> tuple[dict[str, int], bool]:
    """The run's closing transaction: flagged sources' failing streaks, and whether to dedupe."""
    with guarded_writer(db) as con:
        if not recorded:
            record_discovery(con, run_id, results)
        # Feed validators only once their articles are stored: a run killed mid-fetch must not
        # make the next run believe those feeds hold nothing new.
        writes.save_validators(con, {u: v for r in results for u, v in r.validators.items()})
        failing = close_run(con, run_id, stats)
        # Checked before the dedupe flow is imported or started: both are most of an
        # unchanged re-run's time.
        return failing, check_dedupe and dedupe_pending(con)


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
    # Two writer transactions when no feed changed (before discovery and at the end), none held
    # across network I/O: each open costs a connect, a migration check and a close.
    stored_validators, retries = begin_ingest(
        dbp, run_id, registry, sources, {"source": source, "sources": registry.path})
    stats = RunStats()
    for s in sources:
        stats.of(s.name)
    # One Fetcher for discovery and fetching: robots.txt and per-host delays carry over.
    with ExitStack() as stack:
        stack.enter_context(extraction_pool(workers))
        stack.enter_context(fetch_session(registry.fetch, sources))
        # Known URLs are filtered out after discovery, by a lookup of the listed URLs only.
        results = discover_batch(sources, registry.fetch, validators=stored_validators)
        # Discovery is recorded before anything is fetched, so a run killed mid-fetch still
        # leaves its feed exchanges; with nothing to fetch it joins the closing transaction.
        recorded = any(r.candidates for r in results) or bool(retries)
        if recorded:
            store_discovery(dbp, run_id, results)
            count_discovery(results, stats)
        candidates: list[Candidate] = [c for r in results for c in r.candidates]
        # Pages that failed transiently in an earlier run and are due again, even when no feed
        # lists them any more (feeds roll over faster than a backoff of hours).
        found = {c.url for c in candidates}
        candidates += [Candidate(url=u, source=src, found_via="retry") for u, src in retries
                       if u not in found]
        owner = {c.url: c.source for c in candidates}
        logger.info("%d new article URLs from %d sources", len(candidates), len(sources))
        bar = stack.enter_context(Progress("Fetching", len(candidates),
                                           show_progress and bool(candidates)))

        def fetched_batches() -> Iterator[tuple[int, list[RawPage], list[Failure]]]:
            for n, chunk in enumerate(chunks(candidates, batch_size)):
                bar.advance(len(chunk))
                fetched = fetch_batch([(c.url, c.source) for c in chunk], registry.fetch, sources)
                pages, failures, log = split_fetched(fetched, stats, owner)
                store_attempts(dbp, run_id, log)
                yield n, pages, failures

        # Batch k is stored once batch k+1 is fetched and submitted: fetching and storing
        # overlap the extraction in the worker processes.
        for (_, pages, failures), extracted in pipelined(
                fetched_batches(), lambda b: extract_batch.submit(b[1], label=f"{b[0]:05d}"),
                ahead=1):
            stats.add_outcome(store_batch(dbp, pages, extracted, live=True,
                                          extra_failures=failures))
    if not recorded:  # settle records it; counted here, once
        count_discovery(results, stats)
    failing, dedupe = settle(dbp, run_id, results, stats, recorded=recorded,
                             check_dedupe=run_dedupe)
    publish(dbp, run_id, "ingest", stats, failing)
    if dedupe:
        from flows.dedupe import dedupe as dedupe_flow

        dedupe_flow(db=dbp, sources_file=registry.path)
    # After the dedupe: the event tells the dedupe deployment whether it is still to run.
    announce(dbp, run_id, "ingest", stats, deduped=run_dedupe)
    return stats.as_dict()
