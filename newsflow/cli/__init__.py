"""The `newsflow` command: a thin Typer layer over the flows and the database.

The commands live in newsflow.cli.pipeline (those that run flows) and newsflow.cli.database
(those that read or correct what is stored); this module lists them, in `--help` order.
"""

from __future__ import annotations

import os

from newsflow import runtime

# First: the teardown skip must be the first exit handler registered, and Prefect's
# environment defaults must be in place before Prefect is imported.
runtime.skip_teardown_at_exit()
runtime.set_prefect_defaults()

import typer  # noqa: E402
from rich.markup import escape  # noqa: E402

from newsflow.cli import database, pipeline  # noqa: E402
from newsflow.cli.common import err  # noqa: E402
from newsflow.errors import NewsflowError  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="newsflow: ingest news sources into DuckDB through Prefect flows.")


@app.callback()
def options(data_path: str | None = typer.Option(
        None, "--data-path", help="Data path (a shared folder or object store URL) for a new "
        "DuckLake catalog's Parquet files (default: $NEWSFLOW_DATA_PATH).")) -> None:
    """newsflow: ingest news sources into DuckDB through Prefect flows."""
    if data_path:  # the environment carries it to flows and subprocesses
        os.environ["NEWSFLOW_DATA_PATH"] = data_path


app.command()(pipeline.run)
app.command("import-warc")(pipeline.import_warc_cmd)
app.command()(database.sql)
app.command()(pipeline.demo)
app.command()(pipeline.deploy)
app.command()(pipeline.serve)
app.command("dedupe")(pipeline.dedupe_cmd)
app.command()(database.stories)
app.command()(pipeline.reextract)
app.command("sources")(database.sources_cmd)
app.add_typer(database.boilerplate_app, name="boilerplate")
app.add_typer(database.failures_app, name="failures")


def main() -> None:
    """Entry point: NewsflowErrors become one clear line on stderr and exit status 1."""
    runtime.tune_malloc()
    try:
        try:
            with runtime.ephemeral_settings():
                app()
        except NewsflowError as exc:
            # escaped: messages quote TOML tables ([fetch]) and extras (.[dev]), not markup
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise SystemExit(1) from None
    except SystemExit as exc:  # Typer ends every run with one
        code = exc.code
        runtime.end_without_teardown(code if isinstance(code, int) else 0 if code is None else 1)
        raise
    runtime.end_without_teardown(0)
