"""The commands that run flows: run, import-warc, demo, dedupe, reextract, deploy, serve."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from newsflow import runtime
from newsflow.cli.common import DbOpt, SourcesOpt, WorkersOpt, db_param, out, print_rows, print_stats
from newsflow.errors import NewsflowError

DEMO_QUERIES = [
    ("Articles per source and kind",
     "SELECT source, source_kind, count(*) AS n FROM articles GROUP BY ALL ORDER BY n DESC"),
    ("Newest articles",
     "SELECT published_at, source, title FROM articles ORDER BY published_at DESC NULLS LAST LIMIT 5"),
    ("Stories with copies",
     "SELECT title, original_source, member_count FROM stories WHERE member_count > 1"),
]


def run(source: Annotated[str | None, typer.Option(help="Only this source (its name).")] = None,
        sources: SourcesOpt = None, db: DbOpt = None) -> None:
    """Live ingest: discover, fetch, extract and store every enabled source (or one)."""
    from flows.ingest import ingest, select_sources
    from newsflow.config import load_registry

    select_sources(load_registry(sources), source)  # config errors before any flow starts
    runtime.preflight(db, warm=runtime.ready_extraction)
    stats = ingest(source=source, sources_file=sources, db=db_param(db), show_progress=True)
    print_stats("ingest", stats)


def import_warc_cmd(files: Annotated[list[Path], typer.Argument(help="WARC files (.warc or .warc.gz).")],
                    sources: SourcesOpt = None, db: DbOpt = None, workers: WorkersOpt = None,
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
    runtime.preflight(db, warm=lambda: runtime.warm_import(workers))
    from flows.import_warc import import_warc

    stats = import_warc(paths=[str(f) for f in files], sources_file=sources, db=db_param(db),
                        workers=workers, show_progress=True, copy_raw=copy_raw)
    print_stats("import-warc", stats)


def demo(db: Annotated[str, typer.Option("--db", help="Where to build the demo database.")] = "demo.duckdb"
         ) -> None:
    """Import the bundled WARC of real news pages into a fresh database, then show what landed."""
    from storage.db import db_path, reader
    from storage.reads import table_counts

    # No database check: the file is rebuilt from scratch.
    runtime.preflight(db, check_database=False, warm=lambda: runtime.warm_import(None))
    from flows.import_warc import import_warc

    path = db_path(db)
    if isinstance(path, Path):  # a lake is not dropped: the import adds only what is missing
        for p in (path, path.with_name(path.name + ".wal")):
            p.unlink(missing_ok=True)
    warc = resources.files("newsflow").joinpath("data/demo.warc.gz")
    with resources.as_file(warc) as warc_path:
        # --copy-raw: the bundled WARC may be a temporary file (as_file), or move on upgrade.
        stats = import_warc(paths=[str(warc_path)], db=str(path), show_progress=True,
                            copy_raw=True)
    print_stats("demo import", stats)
    with reader(path) as con:
        counts = table_counts(con)
        out.print("\n[bold]Rows per table[/bold]: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for title, q in (DEMO_QUERIES[0], DEMO_QUERIES[2]):  # what landed, what merged
            cur = con.execute(q)
            out.print(f"\n[bold]{title}[/bold]")
            print_rows([d[0] for d in cur.description or []], cur.fetchall(), "table")
    out.print("\n[bold]Try next[/bold] (newsflow is .venv/bin/newsflow; "
              "`source .venv/bin/activate` puts it on PATH):")
    for title, q in DEMO_QUERIES:
        print(f"  # {title}\n  newsflow sql \"{q}\" --db {db}")  # unwrapped: copy-pasteable


def deploy(db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Create the work pool, the DuckDB writer limit and the deployments of prefect.yaml (idempotent)."""
    from flows.deploy import deploy_all

    names = deploy_all(db=db, sources=sources)
    out.print("deployed: " + ", ".join(names))
    out.print("start a worker to run them: prefect worker start --pool newsflow")


def serve(db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Run the deployments of prefect.yaml from this process, schedules and triggers included."""
    from flows.deploy import serve_all

    serve_all(db=db, sources=sources)


def dedupe_cmd(db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Merge copies into stories: learn boilerplate, verify near-duplicates, elect originals."""
    from newsflow.config import load_registry
    from newsflow.errors import InputFileError
    from storage.db import db_exists, db_path

    if not db_exists(db_path(db)):
        raise InputFileError(str(db_path(db)), "no such database (import or ingest something first)")
    load_registry(sources)  # a broken sources.toml fails here, before any flow starts
    runtime.preflight(db)
    from flows.dedupe import dedupe

    stats = dedupe(db=db_param(db), sources_file=sources)
    out.print(f"[bold]dedupe[/bold]: {stats['articles_processed']} articles processed, "
              f"{stats['new_stories']} new stories, {stats['copies_merged']} copies merged, "
              f"{stats['boilerplate_learned']} boilerplate blocks learned")


def reextract(source: Annotated[str | None, typer.Option(help="Only this source's pages.")] = None,
              sources: SourcesOpt = None, db: DbOpt = None, workers: WorkersOpt = None) -> None:
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
    runtime.preflight(db, warm=runtime.ready_extraction)
    from flows.reextract import reextract as reextract_flow

    stats = reextract_flow(source=source, db=db_param(db), sources_file=sources, workers=workers,
                           show_progress=True)
    out.print(f"[bold]reextract[/bold]: {stats.get('reextracted', 0)} articles re-extracted, "
              f"{stats.get('failed', 0)} pages failed extraction", highlight=False)
