"""import-warc flow: WARC response records through the same extract and store path as live fetching."""

from __future__ import annotations

import ctypes
import gc
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture

from flows.common import RunStats, announce, begin, finish, run_dedupe_flow, unwalked
from flows.pipeline import pipelined
from newsflow.config import load_registry
from newsflow.progress import Progress
from newsflow.reasons import Reason
from newsflow.types import Failure, RawPage, Registry
from newsflow.urls import host_of, normalize_url
from storage.db import db_path, reader
from storage.reads import all_known_urls
from tasks.extract_pool import default_workers, extract_batch, extraction_pool, runs_in_process, task_runner
from tasks.store import register_sources, store_redirects, store_results
from tasks.warc import WarcResponse, iter_warc

# Pages per task run: each task run has a fixed Prefect cost and each batch is one writer
# transaction, while pages in flight (extracting, being stored, being read) are most of the flow
# process's memory. 100 balances the two (docs/performance.md, "Batch size").
BATCH_SIZE = 100
IN_FLIGHT = 1


def warc_run_id(paths: Sequence[str]) -> str:
    """A run id derived from the files, so re-importing the same WARC updates its run row."""
    h = hashlib.sha256()
    for p in paths:
        path = Path(p)
        size = path.stat().st_size
        h.update(f"{path.name}:{size}".encode())
        with path.open("rb") as fh:  # head and tail: cheap, and enough to tell WARCs apart
            h.update(fh.read(1 << 20))
            fh.seek(max(0, size - (1 << 20)))
            h.update(fh.read())
    return "warc-" + h.hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class Redirect:
    """A 3xx response record: no page of its own; where it points is kept (table redirects)."""

    url: str
    source: str
    status: int
    location: str | None


@dataclass(frozen=True, kw_only=True)
class Revisit:
    """A revisit record: the crawler saw content it had already stored; no body to extract."""

    url: str
    source: str


def to_page(rec: WarcResponse, registry: Registry, *, copy_raw: bool = False
            ) -> RawPage | Failure | Redirect | Revisit:
    """A WARC record as a RawPage of its source (the hostname for hosts no source lists).

    Unless copy_raw, the page points at its WARC record, so storage keeps file and offset
    instead of a second compressed copy of the body.
    """
    # The host first: the owning source may list more tracking parameters to drop.
    src = registry.source_for_host(host_of(rec.url.strip()))
    url = normalize_url(rec.url, drop=src.tracking_params if src else ())
    source = src.name if src else host_of(url)
    if rec.truncated:  # never a whole article; transient: a complete copy of the file may come
        return Failure(url=url if rec.url else f"{rec.warc_file}@{rec.offset}",
                       source=source or "-", stage="fetch", reason=Reason.WARC_TRUNCATED,
                       transient=True, detail=f"{rec.truncated} (at byte {rec.offset} of "
                       f"{rec.warc_file})")
    if not url.startswith(("http://", "https://")):
        return Failure(url=rec.url or "(no WARC-Target-URI)", source=source or "-", stage="fetch",
                       reason=Reason.BAD_URL, detail="WARC-Target-URI is not an http(s) URL")
    if rec.rec_type == "revisit":
        return Revisit(url=url, source=source)
    if 300 <= rec.status < 400:
        location = rec.header("Location")
        return Redirect(url=url, source=source, status=rec.status,
                        location=normalize_url(location, url) if location else None)
    if rec.status != 200:
        return Failure(url=url, source=source, stage="fetch", reason=Reason.http(rec.status),
                       status=rec.status, detail="WARC response record with a non-200 status")
    return RawPage(url=url, source=source, fetched_at=rec.fetched_at, body=rec.body,
                   status=rec.status, content_type=rec.content_type, final_url=url,
                   etag=rec.header("ETag"), last_modified=rec.header("Last-Modified"),
                   warc_file=None if copy_raw else rec.warc_file,
                   warc_offset=None if copy_raw else rec.offset)


def batches(paths: Sequence[str], registry: Registry, known: set[str], stats: RunStats,
            size: int, progress: Callable[[int], None] | None = None, *, copy_raw: bool = False,
            redirects: list[Redirect] | None = None
            ) -> Iterator[tuple[list[RawPage], list[Failure]]]:
    """Stream (pages to extract, failures) batches, skipping URLs already stored or seen.

    Revisit and 3xx records are counted in stats (and 3xx ones kept in redirects), not failed.
    """
    pages: list[RawPage] = []
    failures: list[Failure] = []
    for path in paths:
        for rec in iter_warc(path, progress):
            item = to_page(rec, registry, copy_raw=copy_raw)
            if isinstance(item, Revisit | Redirect):
                stats.counts["warc_revisits" if isinstance(item, Revisit) else "warc_redirects"] += 1
                if isinstance(item, Redirect) and redirects is not None:
                    redirects.append(item)
                continue
            if isinstance(item, Failure) and item.reason == Reason.WARC_TRUNCATED:
                if item.url in known:  # stored whole already: the cut copy changes nothing
                    stats.skipped_known += 1
                    continue
                # Not marked as seen: a whole copy of the record later on is still imported.
                failures.append(item)
                stats.of(item.source).fetched += 1
                continue
            if item.url in known:
                stats.skipped_known += 1
                continue
            known.add(item.url)
            stats.of(item.source).fetched += 1
            (pages if isinstance(item, RawPage) else failures).append(item)  # type: ignore[arg-type]
            if len(pages) + len(failures) >= size:
                yield pages, failures
                pages, failures = [], []
    if pages or failures:
        yield pages, failures


# $NEWSFLOW_TASK_RUNNER=dask (or $NEWSFLOW_DASK_ADDRESS) puts extraction on Dask workers; set it
# before this module is imported, or use import_warc.with_options(task_runner=dask_runner(...)).
@flow(name="import-warc", task_runner=task_runner())
def import_warc(paths: list[str], sources_file: str | None = None, db: str | None = None,
                batch_size: int = BATCH_SIZE, workers: int | None = None, show_progress: bool = False,
                run_dedupe: bool = True, copy_raw: bool = False) -> dict[str, object]:
    """Import WARC files (backfills, the demo, tests): extract in worker processes, store in batches.

    Raw pages stay in the WARCs (their file and offset are stored) unless copy_raw.
    """
    logger = get_run_logger()
    registry = load_registry(sources_file)
    dbp = str(db_path(db))
    paths = [str(Path(p)) for p in paths]
    run_id = warc_run_id(paths)
    register_sources(dbp, registry)
    with reader(dbp) as con:
        known = set(all_known_urls(con))
    begin(dbp, run_id, "import-warc", {"paths": paths, "sources": registry.path})
    stats = RunStats()
    total = sum(Path(p).stat().st_size for p in paths)  # the bar counts bytes of the WARCs read
    workers = default_workers() if workers is None else workers
    redirects: list[Redirect] = []
    # On Dask the workers extract; the local pool would only compete with them for the cores.
    local = runs_in_process()
    local_workers = workers if local else 1
    # Dask runs each batch on one worker: keep enough batches in flight to feed them all.
    ahead = IN_FLIGHT if local else 2 * max(workers, 1)

    def submit(batch: tuple[int, list[RawPage], list[Failure]]) -> PrefectFuture:
        n, pages, _ = batch
        # unwalked(): Prefect would otherwise walk every page looking for futures to track, on
        # every task run (its documented fix for large parameters). Not on Dask: the wrapper
        # reaches the function there as a plain tuple.
        return extract_batch.submit(unwalked(pages) if local else pages, label=f"{n:05d}")

    with extraction_pool(local_workers), \
            Progress("Importing WARC", total, show_progress, in_bytes=True) as bar:
        read = batches(paths, registry, known, stats, batch_size, bar.advance, copy_raw=copy_raw,
                       redirects=redirects)
        for (_, pages, failures), results in pipelined(
                ((n, p, f) for n, (p, f) in enumerate(read)), submit, ahead):
            # A plain call, not a task run: a store task per batch would double the import's
            # task runs, and the writer already waits for a locked database.
            stats.add_outcome(store_results(dbp, pages, results, live=False,
                                            extra_failures=failures))
    if redirects:
        store_redirects(dbp, [(r.url, r.source, r.status, r.location) for r in redirects])
    logger.info("imported %s: %d new articles, %d failures, %d already stored",
                ", ".join(paths), stats.new_articles, stats.failed, stats.skipped_known)
    finish(dbp, run_id, "import-warc", stats)
    if run_dedupe:
        give_back_memory()  # the import's high-water mark, before dedupe adds its own
        run_dedupe_flow(dbp, registry.path)
    announce(dbp, run_id, "import-warc", stats, deduped=run_dedupe)
    return stats.as_dict()


def give_back_memory() -> None:
    """Collect garbage and return free heap pages to the system (glibc's malloc_trim).

    glibc keeps freed heap memory for reuse; without this the import's high-water mark stays
    held through the dedupe that follows (docs/performance.md).
    """
    gc.collect()
    with suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(None).malloc_trim(0)

