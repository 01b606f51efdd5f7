"""End-to-end throughput: `newsflow import-warc` against bare multi-process trafilatura loops.

Baselines (same pages, same cores, pages already in memory, WARC reading not timed):
  bare extract:  multiprocessing.Pool(os.cpu_count()) (fork) calling
                 trafilatura.extract(body, include_comments=False) on each raw body;
  bare metadata: the same pool calling
                 trafilatura.bare_extraction(body, include_comments=False, with_metadata=True),
                 the extraction work newsflow actually needs (title, author, date...).

Prefect's share is measured by running the same import twice in fresh processes, both after the
CLI's start-up readying (newsflow.runtime.warm_import): as the flow, the way `newsflow import-warc`
runs it (its temporary API server started first, that start-up reported apart), and with the
flow and its tasks called as plain functions (`.fn`, a thread pool for `.submit`), no API.

Run one mode alone:  .venv/bin/python bench/throughput.py flow|plain|writer WARC DB
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trafilatura  # noqa: E402

from bench.procs import Measured, check, run_measured  # noqa: E402
from tasks.warc import iter_warc  # noqa: E402

_BEGIN = re.compile(r"Beginning flow run '(?P<run>[^']+)' for flow '(?P<flow>[^']+)'")
BARE_EXTRACT = "trafilatura.extract(body, include_comments=False)"
BARE_METADATA = "trafilatura.bare_extraction(body, include_comments=False, with_metadata=True)"


def bare_extract(body: bytes) -> int:
    """Baseline work for one page: plain text extraction, no metadata."""
    return len(trafilatura.extract(body, include_comments=False) or "")


def bare_metadata(body: bytes) -> int:
    """Baseline work for one page: extraction with metadata, as newsflow needs it."""
    doc = trafilatura.bare_extraction(body, include_comments=False, with_metadata=True)
    return len(getattr(doc, "text", None) or "")


def warc_bodies(path: Path) -> list[bytes]:
    """The raw bodies of a WARC's response records, in order."""
    return [rec.body for rec in iter_warc(path)]


def stock_trafilatura() -> bool:
    """Whether this process runs trafilatura as shipped: tasks.trafilatura_fast, once installed,
    would make the baselines faster than plain trafilatura is."""
    fast = sys.modules.get("tasks.trafilatura_fast")
    return fast is None or not fast.installed()


def bare_loop(bodies: Sequence[bytes], fn: Callable[[bytes], int], workers: int | None = None) -> float:
    """Seconds for a fresh Pool of `workers` processes (default: one per core) to run fn on all."""
    if not stock_trafilatura():  # the pool forks this process: its trafilatura is the baseline's
        raise RuntimeError("the bare baselines must run trafilatura as shipped")
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers or os.cpu_count()) as pool:
        for _ in pool.imap_unordered(fn, bodies, chunksize=4):
            pass
    return time.perf_counter() - start


def newsflow_bin() -> str:
    """The `newsflow` console script of the running interpreter's environment."""
    return str(Path(sys.executable).with_name("newsflow"))


def cli_import(warc: Path, db: Path, env: dict[str, str], *, memory: bool = False) -> Measured:
    """`newsflow import-warc WARC --db DB` as a user runs it (a fresh DB, dedupe included);
    with memory, the process tree's RSS sampled (bench.procs.run_measured: it costs CPU)."""
    return check(run_measured([newsflow_bin(), "import-warc", str(warc), "--db", str(db)], env=env,
                              memory=memory), "newsflow import-warc")


def cli_phases(m: Measured) -> dict[str, float]:
    """Where a CLI import's wall time went, from the timestamps of its log lines.

    startup: Python, imports and Prefect's ephemeral API until the flow begins; import: the
    WARC's pages extracted and stored; after_import: dedupe and the run summary, until the
    import-warc flow run finishes; exit: stopping the ephemeral API and the process. Start-up
    and exit are fixed costs per command, the same for 10 pages or 10 million.
    """
    begin = m.first("Beginning flow run") or 0.0
    imported = m.first("- imported ") or m.wall
    name = _flow_run_name(m)
    finished = (m.first(f"Flow run '{name}' - Finished in state") if name else None) or m.wall
    return {"startup_s": begin, "import_s": imported - begin, "after_import_s": finished - imported,
            "run_s": finished - begin, "exit_s": m.wall - finished}


def _flow_run_name(m: Measured) -> str | None:
    """The import-warc flow run's generated name, from its "Beginning flow run" log line."""
    for _, line in m.lines:
        if (hit := _BEGIN.search(line)) and hit["flow"] == "import-warc":
            return hit["run"]
    return None


def in_process(mode: str, warc: Path, db: Path, env: dict[str, str]) -> dict[str, float]:
    """Run this file in `mode` (flow or plain) in a fresh process; its JSON figures."""
    m = check(run_measured([sys.executable, __file__, mode, str(warc), str(db)], env=env),
              f"throughput {mode}")
    return json.loads(next(line for _, line in reversed(m.lines) if line.startswith("{")))


def _dedupe_clock() -> dict[str, float]:
    """When the import hands over to its dedupe (filled in as it happens): splits a run in two."""
    import flows.import_warc as mod

    marks: dict[str, float] = {}
    run_dedupe_flow = mod.run_dedupe_flow

    def clocked(*args: Any, **kwargs: Any) -> None:
        marks["dedupe_start"] = time.perf_counter()
        run_dedupe_flow(*args, **kwargs)
    mod.run_dedupe_flow = clocked
    return marks


def run_flow(warc: str, db: str) -> dict[str, float]:
    """The import as `newsflow import-warc` runs it, dedupe included: the CLI's start-up (its
    preflight: the local API server, and meanwhile the flow's modules, the pool's forkserver and
    a frozen start-up heap, newsflow.runtime.warm_import), reported apart, then the flow, timed."""
    from flows.import_warc import import_warc
    from newsflow import runtime

    marks = _dedupe_clock()
    # As the CLI runs flows: without flow-run heartbeats, whose thread each run waits up to 1 s for at
    # its end (newsflow.runtime.ephemeral_settings says why they are off). The import is the
    # process's first flow run, as in the CLI: its first-run costs are Prefect's, and timed.
    runtime.set_prefect_defaults()
    with runtime.ephemeral_settings():
        start = time.perf_counter()
        runtime.preflight(db, warm=lambda: runtime.warm_import(None))
        startup = time.perf_counter() - start
        start = time.perf_counter()
        import_warc(paths=[warc], db=db)
    return {"seconds": time.perf_counter() - start, "import_s": marks["dedupe_start"] - start,
            "prefect_startup_s": startup}


def _unwrapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn called as Prefect would: quote()d parameters unwrapped first."""
    from prefect.utilities.annotations import BaseAnnotation

    def call(*args: Any, **kwargs: Any) -> Any:
        args = tuple(a.unwrap() if isinstance(a, BaseAnnotation) else a for a in args)
        kwargs = {k: v.unwrap() if isinstance(v, BaseAnnotation) else v for k, v in kwargs.items()}
        return fn(*args, **kwargs)
    return call


class _PlainTask:
    """Stands in for a Prefect task: .submit runs .fn on a thread pool, like ThreadPoolTaskRunner."""

    def __init__(self, fn: Callable[..., Any], pool: ThreadPoolExecutor) -> None:
        self.fn, self.pool = _unwrapped(fn), pool

    def submit(self, *args: Any, **kwargs: Any) -> Future[Any]:
        return self.pool.submit(self.fn, *args, **kwargs)


def _bench_logger() -> logging.Logger:
    """Stands in for Prefect's get_run_logger in the plain runs."""
    return logging.getLogger("bench")


def _patch(module: Any, **values: Any) -> None:
    """Replace module attributes (the plain runs' stand-ins for Prefect's tasks and helpers)."""
    for name, value in values.items():
        setattr(module, name, value)


def run_plain(warc: str, db: str) -> dict[str, float]:
    """The same import, dedupe included, with the flows and tasks as plain functions: no Prefect
    API, runs, artifacts or events."""
    import flows.dedupe as dedupe_mod
    import flows.import_warc as mod
    from flows.common import RunStats
    from newsflow.runtime import check_db, warm_import
    from storage import writes
    from tasks.store import guarded_writer

    def finish(db_: str, run_id: str, flow_: str, stats: RunStats, *, status: str = "completed") -> None:
        with guarded_writer(db_) as con:  # the run row only: artifacts and events are Prefect's
            writes.finish_run(con, run_id, status, stats.as_dict())

    # The dedupe flow's body as the import runs it, its tasks as plain calls too.
    _patch(dedupe_mod, get_run_logger=_bench_logger, register_sources=dedupe_mod.register_sources.fn,
           prepare_batch=_unwrapped(dedupe_mod.prepare_batch.fn),
           match_batch=_unwrapped(dedupe_mod.match_batch.fn),
           write_batch=_unwrapped(dedupe_mod.write_batch.fn),
           create_markdown_artifact=lambda **_: None)
    marks = _dedupe_clock()
    with ThreadPoolExecutor(max_workers=4) as pool:  # the flow's ThreadPoolTaskRunner(4)
        _patch(mod, get_run_logger=_bench_logger, register_sources=mod.register_sources.fn,
               extract_batch=_PlainTask(mod.extract_batch.fn, pool), finish=finish,
               # The ingested event is Prefect's: emitting it outside a run reached for an API.
               announce=lambda *_, **__: False)
        # The CLI's preflight without its API server, as on the flow side: the database opened
        # (so migrated) and the start-up readying (the same forkserver, a frozen heap). Without
        # the readying the flow side paid for the garbage collector walking Prefect's client
        # objects and the plain side did not, which inflated Prefect's share.
        check_db(db)
        warm_import(None)
        start = time.perf_counter()
        mod.import_warc.fn(paths=[warc], db=db)
    return {"seconds": time.perf_counter() - start, "import_s": marks["dedupe_start"] - start}


def run_writer(warc: str, db: str, n: int = 300, batch: int = 50) -> dict[str, float]:
    """The one writer's cost: storing extracted batches (raw pages, articles) per page, in ms."""
    from concurrent.futures import ProcessPoolExecutor
    from itertools import islice

    from flows.import_warc import to_page
    from newsflow.config import load_registry
    from newsflow.types import RawPage
    from storage import writes
    from storage.db import writer
    from tasks import trafilatura_fast
    from tasks.extract import extract_page
    from tasks.store import store_results

    registry = load_registry(None)
    pages = [p for rec in islice(iter_warc(warc), n) if isinstance(p := to_page(rec, registry), RawPage)]
    # Not timed: only the writes are. The workers extract as the product's do.
    with ProcessPoolExecutor(initializer=trafilatura_fast.install) as pool:
        results = list(pool.map(extract_page, pages, chunksize=8))
    with writer(db) as con:
        writes.upsert_sources(con, registry)
    start = time.perf_counter()
    for i in range(0, len(pages), batch):
        store_results(db, pages[i:i + batch], results[i:i + batch], live=False)
    return {"writer_ms_per_page": (time.perf_counter() - start) / len(pages) * 1000}


def run_cpu(warc: str, db: str, n: int = 300, rounds: int = 2) -> dict[str, float]:
    """CPU per page in one process, same pages: extract_page with tasks.trafilatura_fast, without
    (trafilatura as shipped, its metadata included), and the bare extract baseline. Best of
    `rounds`, alternated."""
    from itertools import islice

    from flows.import_warc import to_page
    from newsflow.config import load_registry
    from newsflow.types import RawPage
    from tasks import trafilatura_fast
    from tasks.extract import extract_page

    registry = load_registry(None)
    pages = [p for rec in islice(iter_warc(warc), n) if isinstance(p := to_page(rec, registry), RawPage)]
    best: dict[str, float] = {}

    def clock(name: str, fn: Callable[[], object]) -> None:
        start = time.process_time()
        fn()
        ms = (time.process_time() - start) / len(pages) * 1000
        best[name] = min(best.get(name, ms), ms)

    for _ in range(rounds):
        trafilatura_fast.uninstall()
        clock("bare_extract_cpu_ms", lambda: [bare_extract(p.body) for p in pages])
        clock("extract_page_stock_cpu_ms", lambda: [extract_page(p) for p in pages])
        trafilatura_fast.install()
        clock("extract_page_cpu_ms", lambda: [extract_page(p) for p in pages])
    return best


def main(argv: list[str]) -> None:
    mode, warc, db = argv
    run = {"flow": run_flow, "plain": run_plain, "writer": run_writer, "cpu": run_cpu}[mode]
    print(json.dumps(run(warc, db)))


if __name__ == "__main__":
    main(sys.argv[1:])
