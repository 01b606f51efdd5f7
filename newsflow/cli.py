"""The `newsflow` command: a thin Typer layer over the flows and the database."""

from __future__ import annotations

import atexit
import csv
import gc
import importlib
import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext, suppress
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

# The exit status of a CLI run that main() finished, for _skip_teardown.
_exit_status: list[int] = []


def _skip_teardown() -> None:
    """End a finished CLI run without the interpreter's teardown.

    Registered before anything else is imported, so it runs after every other atexit handler
    (Prefect's log and event flushes, its API server's stop). What it skips, freeing thousands
    of modules' objects one by one, took 1.4-1.6 s at the end of every run (measured on a
    200-page import: 0.1 s with it). Only after main(): tests importing this module, or a
    crash, end normally.
    """
    if not _exit_status:
        return
    if "logging" in sys.modules:  # its own atexit flush was registered after this one
        import logging

        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe: nothing left to write to
            stream.flush()
    os._exit(_exit_status[0])


atexit.register(_skip_teardown)

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.table import Table  # noqa: E402

# A CLI run uses Prefect's ephemeral API unless PREFECT_API_URL points at a server; it sends
# no usage analytics unless the user asks for them.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect gives its ephemeral API 20 s to start, and a busy 2-core machine (a run overlapping
# a scheduled one) has missed that: the run then died with a traceback before doing anything.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from newsflow.errors import NewsflowError  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="newsflow: ingest news sources into DuckDB through Prefect flows.")
out = Console()
err = Console(stderr=True)
_settings = ExitStack()  # settings that hold until the process ends (never closed: see _use_local_api)

DbOpt = Annotated[str | None, typer.Option(
    "--db", help="DuckDB file (default: $NEWSFLOW_DB or news.duckdb).")]
SourcesOpt = Annotated[str | None, typer.Option(
    "--sources", help="sources.toml (default: $NEWSFLOW_SOURCES or the bundled registry).")]

MAX_SOURCE_ROWS = 15
DEMO_QUERIES = [
    ("Articles per source and kind",
     "SELECT source, source_kind, count(*) AS n FROM articles GROUP BY ALL ORDER BY n DESC"),
    ("Newest articles",
     "SELECT published_at, source, title FROM articles ORDER BY published_at DESC NULLS LAST LIMIT 5"),
    ("Stories with copies",
     "SELECT title, original_source, member_count FROM stories WHERE member_count > 1"),
]


def _preflight(db: str | None, *, check_db: bool = True,
               warm: Callable[[], object] | None = None) -> None:
    """Fail before any flow starts, in one line, when the Prefect API or the database is unusable.

    warm: start-up work the command needs anyway, done while a local API server starts.
    """
    import requests
    from prefect.settings import get_current_settings

    def ready() -> None:
        _warm_prefect()
        if warm is not None:
            warm()

    # Without this check a dead PREFECT_API_URL surfaces as a long Prefect traceback.
    url = get_current_settings().api.url
    if not url:
        _use_local_api(meanwhile=ready)
    else:
        ready()
        try:
            status = requests.get(url.rstrip("/") + "/health", timeout=5).status_code
        except requests.RequestException as exc:
            raise NewsflowError(
                f"PREFECT_API_URL={url}: no Prefect API answers there ({type(exc).__name__}). "
                "Start one (`prefect server start`) or unset PREFECT_API_URL to run with a "
                "temporary local API.") from None
        if status >= 500:
            raise NewsflowError(f"PREFECT_API_URL={url}: the Prefect API is unhealthy (HTTP {status})")
    if check_db:
        _check_db(db)


def _check_db(db: str | None) -> None:
    """Open the database for writing once (a new one gets its schema): waits while another
    process holds the file, then raises DatabaseLockedError naming it."""
    from storage.db import db_path, writer

    with writer(db_path(db)):
        pass


def _db_param(db: str | None) -> str:
    """--db as flows get it: absolute, so the run, its event and the dedupe deployment it
    triggers (working in another folder) all name the same file."""
    from storage.db import db_path

    return str(db_path(db))


def _use_local_api(meanwhile: Callable[[], object] | None = None) -> None:
    """Run this command's flows against a temporary local API server (newsflow.local_api).

    Kept until the process ends: Prefect's log and event workers still talk to the API in
    their exit handlers. Children (Dask workers included) inherit the URL from the environment.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from newsflow import local_api

    url = local_api.start(meanwhile=meanwhile)
    os.environ["PREFECT_API_URL"] = url
    _settings.enter_context(temporary_settings({PREFECT_API_URL: url}))


@app.command()
def run(source: Annotated[str | None, typer.Option(help="Only this source (its name).")] = None,
        sources: SourcesOpt = None, db: DbOpt = None) -> None:
    """Live ingest: discover, fetch, extract and store every enabled source (or one)."""
    from flows.ingest import ingest, select_sources
    from newsflow.config import load_registry

    select_sources(load_registry(sources), source)  # config errors before any flow starts
    _preflight(db)
    stats = ingest(source=source, sources_file=sources, db=_db_param(db), show_progress=True)
    _print_stats("ingest", stats)


@app.command("import-warc")
def import_warc_cmd(files: Annotated[list[Path], typer.Argument(help="WARC files (.warc or .warc.gz).")],
                    sources: SourcesOpt = None, db: DbOpt = None,
                    workers: Annotated[int | None, typer.Option(help="Extraction processes.")] = None,
                    copy_raw: Annotated[bool, typer.Option(
                        "--copy-raw", help="Copy each raw page into the database instead of "
                        "pointing at its WARC record (keep this if the WARCs may be deleted).")] = False
                    ) -> None:
    """Import WARC response records (Common Crawl news format) through extract and store.

    Raw pages stay in the WARC files (the database records file and offset, for `reextract`):
    keep the WARCs, or import with --copy-raw.
    """
    from newsflow.config import load_registry
    from newsflow.errors import InputFileError

    load_registry(sources)  # config errors before any flow starts
    for f in files:
        if not f.is_file():
            raise InputFileError(str(f), "no such WARC file")
    _preflight(db, warm=lambda: _warm_import(workers))
    from flows.import_warc import import_warc

    stats = import_warc(paths=[str(f) for f in files], sources_file=sources, db=_db_param(db),
                        workers=workers, show_progress=True, copy_raw=copy_raw)
    _print_stats("import-warc", stats)


def _warm_prefect() -> None:
    """What Prefect loads on a process's first flow run with parameters, loaded ahead.

    It serializes the run's parameters with FastAPI's jsonable_encoder, imported on first use:
    0.13 s of CPU between the command's start and an import's first batch, on one core while
    the other idled.
    """
    importlib.import_module("fastapi.encoders")


def _warm_import(workers: int | None) -> None:
    """What an import needs before and after its pages, readied while the local API starts
    (a core idles then): the flow's modules, the dedupe's numpy and modules (~0.4 s, otherwise
    after the import), and the extraction pool's forkserver (tasks.extract.start_forkserver).

    Then the ~320k objects loaded so far (modules, Prefect, trafilatura) leave the garbage
    collector's view for good (gc.freeze): they live as long as the process, and each full
    collection walked them all again (the one before the import's dedupe took 0.15 s, 4 ms
    after; 2,000-page bench import).
    """
    from tasks.extract import start_forkserver

    for module in ("flows.import_warc", "flows.dedupe"):
        importlib.import_module(module)
    start_forkserver(workers)
    gc.collect()  # start-up's own garbage first: frozen, it would never be freed
    gc.freeze()


@app.command()
def sql(query: Annotated[str, typer.Argument(help="SQL to run on a read-only connection.")],
        db: DbOpt = None,
        format: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table"
        ) -> None:
    """Run a read-only SQL query against the database."""
    if format not in ("table", "csv", "json"):
        raise typer.BadParameter("must be table, csv or json", param_hint="--format")
    _print_rows(*_run_query(query, db), format)


def _run_query(query: str, db: str | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows of a read-only query (retried once with more memory, as writes are)."""
    import duckdb

    from storage.db import db_path, reader, retry_out_of_memory

    @retry_out_of_memory("newsflow sql")
    def run() -> tuple[list[str], list[tuple[Any, ...]]]:
        with reader(db_path(db)) as con:
            try:
                cur = con.execute(query)
            except duckdb.OutOfMemoryException:
                raise
            except duckdb.Error as exc:
                raise NewsflowError(f"query failed: {exc}") from None
            return [d[0] for d in cur.description or []], cur.fetchall()

    return run()


@app.command()
def demo(db: Annotated[str, typer.Option("--db", help="Where to build the demo database.")] = "demo.duckdb"
         ) -> None:
    """Import the bundled WARC of real news pages into a fresh database, then show what landed."""
    from storage.db import reader
    from storage.reads import table_counts

    _preflight(db, check_db=False, warm=lambda: _warm_import(None))  # rebuilt from scratch
    from flows.import_warc import import_warc

    path = Path(db)
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    warc = resources.files("newsflow").joinpath("data/demo.warc.gz")
    with resources.as_file(warc) as warc_path:
        # --copy-raw: the bundled WARC may be a temporary file (as_file), or move on upgrade.
        stats = import_warc(paths=[str(warc_path)], db=str(path), show_progress=True,
                            copy_raw=True)
    _print_stats("demo import", stats)
    with reader(path) as con:
        counts = table_counts(con)
        out.print("\n[bold]Rows per table[/bold]: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for title, q in (DEMO_QUERIES[0], DEMO_QUERIES[2]):  # what landed, what merged
            cur = con.execute(q)
            out.print(f"\n[bold]{title}[/bold]")
            _print_rows([d[0] for d in cur.description or []], cur.fetchall(), "table")
    out.print("\n[bold]Try next[/bold] (newsflow is .venv/bin/newsflow; "
              "`source .venv/bin/activate` puts it on PATH):")
    for title, q in DEMO_QUERIES:
        print(f"  # {title}\n  newsflow sql \"{q}\" --db {db}")  # unwrapped: copy-pasteable


@app.command()
def deploy(db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Create the work pool, the DuckDB writer limit and the deployments of prefect.yaml (idempotent)."""
    from flows.deploy import deploy_all

    names = deploy_all(db=db, sources=sources)
    out.print("deployed: " + ", ".join(names))
    out.print("start a worker to run them: prefect worker start --pool newsflow")


@app.command()
def serve(db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Run the deployments of prefect.yaml from this process, schedules and triggers included."""
    from flows.deploy import serve_all

    serve_all(db=db, sources=sources)


@app.command("dedupe")
def dedupe_cmd(db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Merge copies into stories: learn boilerplate, verify near-duplicates, elect originals."""
    from newsflow.config import load_registry
    from newsflow.errors import InputFileError
    from storage.db import db_path

    if not db_path(db).is_file():
        raise InputFileError(str(db_path(db)), "no such database (import or ingest something first)")
    load_registry(sources)  # a broken sources.toml fails here, before any flow starts
    _preflight(db)
    from flows.dedupe import dedupe

    stats = dedupe(db=_db_param(db), sources_file=sources)
    out.print(f"[bold]dedupe[/bold]: {stats['articles_processed']} articles processed, "
              f"{stats['new_stories']} new stories, {stats['copies_merged']} copies merged, "
              f"{stats['boilerplate_learned']} boilerplate blocks learned")


@app.command()
def stories(limit: Annotated[int, typer.Option("--limit", "-n", help="How many stories.")] = 10,
            db: DbOpt = None) -> None:
    """Show the newest stories that have copies: the original, then each copy and its evidence."""
    from storage import dedupe as store
    from storage.db import db_path, reader

    with reader(db_path(db)) as con:
        rows = store.newest_stories(con, limit)
        copies = store.copies_of(con, [r[0] for r in rows])
    if not rows:
        out.print("no stories yet: run `newsflow dedupe` after an import or ingest")
        return
    for sid, url, source, title, n, first in rows:
        out.print(f"\n[bold]{title or '(untitled)'}[/bold]  [dim]{sid}, {n} member(s), "
                  f"first seen {first:%Y-%m-%d %H:%M}[/dim]", highlight=False)
        table = Table("role", "source", "similarity", "method", show_lines=False)
        table.add_column("url", overflow="fold")  # a cut URL is useless: wrap it instead
        table.add_row("original", str(source), "", "self", str(url))
        for _, curl, csource, _, sim, method in (c for c in copies if c[0] == sid):
            table.add_row("copy", str(csource), f"{sim:.3f}", str(method), str(curl))
        out.print(table)


# --- newsflow boilerplate: what dedupe learned as each site's chrome -------------------------

boilerplate_app = typer.Typer(no_args_is_help=True, help=(
    "Paragraphs dedupe learned as a site's boilerplate: list them, forget one. A source's "
    "keep_blocks in sources.toml keeps paragraphs from ever being learned."))
app.add_typer(boilerplate_app, name="boilerplate")
SAMPLE_CHARS = 80


def _existing_db(db: str | None) -> str:
    """The database path, migrated; a missing file is an error naming it."""
    from newsflow.errors import InputFileError
    from storage.db import db_path

    path = db_path(db)
    if not path.is_file():
        raise InputFileError(str(path), "no such database (import or ingest something first)")
    _check_db(str(path))  # the kept-blocks table comes with a migration
    return str(path)


def _stripped(sample: str, kept: str | None) -> str:
    """Where a block is stripped from articles.text (tasks.boilerplate.stored_text's rule)."""
    from tasks.boilerplate import chrome_kind

    if kept is not None:
        return "never (forgotten)" if kept == "forget" else "never (keep_blocks)"
    kind = chrome_kind(sample)
    return f"everywhere ({kind})" if kind else "at edges only"


@boilerplate_app.command("list")
def boilerplate_list(
        site: Annotated[str | None, typer.Argument(help="Only this site (source name).")] = None,
        db: DbOpt = None,
        format: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table"
        ) -> None:
    """Learned (and forgotten or kept) blocks: site, block, pages, sample, learned_at, stripped."""
    from storage import boilerplate as store_bp
    from storage.db import reader

    if format not in ("table", "csv", "json"):
        raise typer.BadParameter("must be table, csv or json", param_hint="--format")
    with reader(_existing_db(db)) as con:
        blocks = store_bp.list_blocks(con, site)
    if not blocks and format == "table":
        out.print(f"no learned boilerplate{f' for site {site!r}' if site else ''}")
        return
    cut = SAMPLE_CHARS if format == "table" else None
    _print_rows(["site", "block", "pages", "sample", "learned_at", "stripped"],
                [(b.site, b.block_hash, b.pages, b.sample[:cut], b.learned_at,
                  _stripped(b.sample, b.kept)) for b in blocks], format)


@boilerplate_app.command("forget")
def boilerplate_forget(site: Annotated[str, typer.Argument(help="The site (source name).")],
                       block: Annotated[str, typer.Argument(help="The block hash (`list`).")],
                       db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Forget a learned block for good and re-clean the stored articles that held it."""
    from flows.dedupe import keep_lists, pattern_lists
    from newsflow.config import load_registry
    from tasks.dedupe import run_all
    from tasks.dedupe_prepare import forget_block
    from tasks.store import guarded_writer

    registry = load_registry(sources)  # the re-cleaning applies the sources' patterns
    path = _existing_db(db)
    with guarded_writer(path) as con:
        try:
            flagged = forget_block(con, site, block.strip().lower())
        except KeyError:
            raise NewsflowError(f"{path}: site {site!r} has no learned block {block!r} (see "
                                f"`newsflow boilerplate list {site}`)") from None
    # The dedupe, plainly: it re-cleans the flagged articles from raw_text and re-signs them.
    stats = run_all(path, patterns=pattern_lists(registry), keep=keep_lists(registry))
    out.print(f"forgot block {block} of {site}: {flagged} stored articles flagged, "
              f"{stats.recleaned} texts re-cleaned, {stats.articles_processed} articles re-signed",
              soft_wrap=True)


# --- failures reset, reextract, sources (issue 16) -------------------------------------------

failures_app = typer.Typer(no_args_is_help=True, help="Inspect and reset recorded failures.")
app.add_typer(failures_app, name="failures")


@failures_app.command("reset")
def failures_reset(
        source: Annotated[str | None, typer.Option(help="Only this source's failures.")] = None,
        reason: Annotated[str | None, typer.Option(
            help="Only failures with this reason (http_403, timeout, ...).")] = None,
        db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Make failed URLs due again (a site that blocked us has stopped): the next run retries them."""
    from newsflow.config import load_registry
    from storage import writes
    from storage.db import db_path, reader, writer
    from storage.reads import failure_labels

    path = db_path(db)
    with reader(path) as con:  # names the file when it does not exist
        failed_sources, reasons = failure_labels(con)
    if source is not None and source not in failed_sources:
        registry = load_registry(sources)
        if registry.get(source) is None:
            raise NewsflowError(f"--source {source!r}: no such source in {registry.path}, and no "
                                f"failures of it in {path}")
    if reason is not None and reason not in reasons:
        known = ", ".join(sorted(reasons)) or "none"
        raise NewsflowError(f"--reason {reason!r}: no failure in {path} has this reason "
                            f"(recorded reasons: {known})")
    with writer(path) as con:
        n = writes.reset_failures(con, source, reason)
    what = " ".join(filter(None, [f"of source {source}" if source else "",
                                  f"with reason {reason}" if reason else ""]))
    out.print(f"{n} failed URL(s){' ' + what if what else ''} are due again: the next run "
              "retries them", highlight=False)


@app.command()
def reextract(source: Annotated[str | None, typer.Option(help="Only this source's pages.")] = None,
              sources: SourcesOpt = None, db: DbOpt = None,
              workers: Annotated[int | None, typer.Option(help="Extraction processes.")] = None
              ) -> None:
    """Extract every stored raw page again (after a trafilatura upgrade) and replace its article."""
    from newsflow.config import load_registry
    from storage.db import db_path, reader
    from storage.reads import stored_sources

    registry = load_registry(sources)  # config errors before any flow starts
    path = db_path(db)
    with reader(path) as con:  # names the file when it does not exist
        stored = stored_sources(con)
    if source is not None and source not in stored and registry.get(source) is None:
        raise NewsflowError(f"--source {source!r}: no such source in {registry.path}, and no "
                            f"pages of it in {path}")
    _preflight(db)
    from flows.reextract import reextract as reextract_flow

    stats = reextract_flow(source=source, db=_db_param(db), sources_file=sources, workers=workers,
                           show_progress=True)
    out.print(f"[bold]reextract[/bold]: {stats.get('reextracted', 0)} articles re-extracted, "
              f"{stats.get('failed', 0)} pages failed extraction", highlight=False)


@app.command("sources")
def sources_cmd(sources: SourcesOpt = None, db: DbOpt = None,
                format: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")
                                  ] = "table") -> None:
    """List the registry's sources with each one's health (from the source_health view)."""
    from newsflow.config import load_registry
    from storage.db import db_path, reader
    from storage.reads import HEALTH_COLUMNS, source_health

    if format not in ("table", "csv", "json"):
        raise typer.BadParameter("must be table, csv or json", param_hint="--format")
    registry = load_registry(sources)
    path = db_path(db)
    health: dict[str, tuple[Any, ...]] = {}
    if path.exists():
        with reader(path) as con:
            health = source_health(con)
    else:
        err.print(f"{path}: no database yet, so no health to show (run an ingest first)",
                  highlight=False, soft_wrap=True)
    cols = ["source", "kind", "publisher", "enabled", "domains", *HEALTH_COLUMNS]
    rows = []
    for s in registry.sources:
        h = health.get(s.name, (0, 0, False, None))
        rows.append((s.name, s.kind, s.publisher, s.enabled, " ".join(s.domains), *h))
    if format == "table":
        out.print(f"{len(rows)} sources in {registry.path}", highlight=False, soft_wrap=True)
    _print_rows(cols, rows, format)


# Run-wide counts of an import shown after the totals (not failures: see docs/integrity.md).
_WARC_COUNTS = (("warc_revisits", "revisit records"), ("warc_redirects", "redirect records"))


def _print_stats(what: str, stats: Any) -> None:
    if not isinstance(stats, dict):
        return
    out.print(f"[bold]{what}[/bold]: {stats.get('new_articles', 0)} new articles, "
              f"{stats.get('failed', 0)} failures, {stats.get('skipped_known', 0)} already stored"
              + "".join(f", {stats[k]} {label}" for k, label in _WARC_COUNTS if stats.get(k)))
    rows = stats.get("sources") or []
    if rows:
        cols = list(rows[0])
        busiest = sorted(rows, key=lambda r: -(r.get("fetched", 0) + r.get("discovered", 0)))
        _print_rows(cols, [tuple(r.get(c) for c in cols) for r in busiest[:MAX_SOURCE_ROWS]], "table")
        if len(rows) > MAX_SOURCE_ROWS:
            out.print(f"... and {len(rows) - MAX_SOURCE_ROWS} more sources (all in the run's "
                      "Prefect artifact and the runs table)")


def _print_rows(cols: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "csv":
        # \n, not csv's default \r\n: output meant for tail, sort, cut and friends.
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(cols, r, strict=True)) for r in rows], default=str, indent=1))
    else:
        table = Table(*cols, show_lines=False)
        for r in rows:
            table.add_row(*("" if v is None else str(v)[:120] for v in r))
        out.print(table)


def _ephemeral_settings() -> AbstractContextManager[object]:
    """No flow-run heartbeats when no Prefect server is configured.

    Heartbeats let a server spot crashed runs; the ephemeral API dies with this process, so
    nobody reads them, and each flow run would wait up to 1 s at exit for the heartbeat thread
    (most of an unchanged re-run's time).
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if PREFECT_API_URL.value():  # from the environment or the active Prefect profile
        return nullcontext()

    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


# glibc malloc, tuned for a long import (measured on the 10k-page bench import, whole tree):
# - allocations from 128 KB up (raw pages, ~190 KB each, pass through every process) get
#   their own mmap, returned to the system on free. glibc otherwise raises that threshold to
#   the biggest block freed so far (up to 32 MB), after which pages land in the heap and the
#   holes they leave stay resident: the flow process kept ~120 MB more through the dedupe.
# - two arenas, not eight per core: Prefect's and DuckDB's threads each kept their own.
MMAP_THRESHOLD = 128 * 1024
ARENA_MAX = 2
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt parameters, <malloc.h>


def _tune_malloc() -> None:
    """Apply the settings above to this process (mallopt) and to its children (GLIBC_TUNABLES:
    Prefect's API server, the extraction pool). Nothing on other C libraries, or when the user
    set GLIBC_TUNABLES."""
    if sys.platform != "linux" or "GLIBC_TUNABLES" in os.environ:
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (musl has mallopt too)
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(_M_ARENA_MAX, ARENA_MAX)
    os.environ["GLIBC_TUNABLES"] = (f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:"
                                    f"glibc.malloc.arena_max={ARENA_MAX}")


def main() -> None:
    """Entry point: NewsflowErrors become one clear line on stderr and exit status 1."""
    _tune_malloc()
    try:
        try:
            with _ephemeral_settings():
                app()
        except NewsflowError as exc:
            # escaped: messages quote TOML tables ([fetch]) and extras (.[dev]), not markup
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise SystemExit(1) from None
    except SystemExit as exc:  # Typer ends every run with one
        code = exc.code
        _exit_status[:] = [code if isinstance(code, int) else 0 if code is None else 1]
        raise
    _exit_status[:] = [0]
