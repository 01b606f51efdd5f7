"""What the CLI's commands share: the consoles, the common options, table/csv/json output."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)

DbOpt = Annotated[str | None, typer.Option(
    "--db", help="DuckDB file, or a DuckLake URL such as 'ducklake:postgres:dbname=newsflow "
    "host=...' (default: $NEWSFLOW_DB or news.duckdb).")]
SourcesOpt = Annotated[str | None, typer.Option(
    "--sources", help="sources.toml (default: $NEWSFLOW_SOURCES or the bundled registry).")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")]
WorkersOpt = Annotated[int | None, typer.Option(help="Extraction processes.")]

FORMATS = ("table", "csv", "json")
MAX_SOURCE_ROWS = 15
# Run-wide counts of an import shown after the totals (not failures: see docs/integrity.md).
WARC_COUNTS = (("warc_revisits", "revisit records"), ("warc_redirects", "redirect records"))


def check_format(fmt: str) -> None:
    """--format is one of FORMATS."""
    if fmt not in FORMATS:
        raise typer.BadParameter("must be table, csv or json", param_hint="--format")


def db_param(db: str | None) -> str:
    """--db as flows get it: absolute, so the run, its event and the dedupe deployment it
    triggers (working in another folder) all name the same file."""
    from storage.db import db_path

    return str(db_path(db))


def existing_db(db: str | None) -> str:
    """The database path, migrated; a missing file is an error naming it."""
    from newsflow.errors import InputFileError
    from newsflow.runtime import check_db
    from storage.db import db_exists, db_path

    path = db_path(db)
    if not db_exists(path):
        raise InputFileError(str(path), "no such database (import or ingest something first)")
    check_db(str(path))  # the kept-blocks table comes with a migration
    return str(path)


def print_stats(what: str, stats: Any) -> None:
    """A flow's totals in one line, then its busiest sources."""
    if not isinstance(stats, dict):
        return
    out.print(f"[bold]{what}[/bold]: {stats.get('new_articles', 0)} new articles, "
              f"{stats.get('failed', 0)} failures, {stats.get('skipped_known', 0)} already stored"
              + "".join(f", {stats[k]} {label}" for k, label in WARC_COUNTS if stats.get(k)))
    rows = stats.get("sources") or []
    if rows:
        cols = list(rows[0])
        busiest = sorted(rows, key=lambda r: -(r.get("fetched", 0) + r.get("discovered", 0)))
        print_rows(cols, [tuple(r.get(c) for c in cols) for r in busiest[:MAX_SOURCE_ROWS]], "table")
        if len(rows) > MAX_SOURCE_ROWS:
            out.print(f"... and {len(rows) - MAX_SOURCE_ROWS} more sources (all in the run's "
                      "Prefect artifact and the runs table)")


def print_rows(cols: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    """Rows as a rich table, csv or json on stdout."""
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
