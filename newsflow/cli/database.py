"""The commands that read or correct what is stored: sql, stories, sources, boilerplate, failures."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from newsflow.cli.common import (
    DbOpt,
    FormatOpt,
    SourcesOpt,
    check_format,
    err,
    existing_db,
    out,
    print_rows,
)
from newsflow.errors import NewsflowError

SAMPLE_CHARS = 80

boilerplate_app = typer.Typer(no_args_is_help=True, help=(
    "Paragraphs dedupe learned as a site's boilerplate: list them, forget one. A source's "
    "keep_blocks in sources.toml keeps paragraphs from ever being learned."))
failures_app = typer.Typer(no_args_is_help=True, help="Inspect and reset recorded failures.")


def sql(query: Annotated[str, typer.Argument(help="SQL to run on a read-only connection.")],
        db: DbOpt = None, format: FormatOpt = "table") -> None:
    """Run a read-only SQL query against the database."""
    check_format(format)
    print_rows(*run_query(query, db), format)


def run_query(query: str, db: str | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows of a read-only query (retried once with more memory, as writes are)."""
    import duckdb

    from storage.db import db_path, reader
    from storage.memory import retry_out_of_memory

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


def sources_cmd(sources: SourcesOpt = None, db: DbOpt = None, format: FormatOpt = "table") -> None:
    """List the registry's sources with each one's health (from the source_health view)."""
    from newsflow.config import load_registry
    from storage.db import db_exists, db_path, reader
    from storage.reads import HEALTH_COLUMNS, source_health

    check_format(format)
    registry = load_registry(sources)
    path = db_path(db)
    health: dict[str, tuple[Any, ...]] = {}
    if db_exists(path):
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
    print_rows(cols, rows, format)


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
        db: DbOpt = None, format: FormatOpt = "table") -> None:
    """Learned (and forgotten or kept) blocks: site, block, pages, sample, learned_at, stripped."""
    from storage import boilerplate as store_bp
    from storage.db import reader

    check_format(format)
    with reader(existing_db(db)) as con:
        blocks = store_bp.list_blocks(con, site)
    if not blocks and format == "table":
        out.print(f"no learned boilerplate{f' for site {site!r}' if site else ''}")
        return
    cut = SAMPLE_CHARS if format == "table" else None
    print_rows(["site", "block", "pages", "sample", "learned_at", "stripped"],
               [(b.site, b.block_hash, b.pages, b.sample[:cut], b.learned_at,
                 _stripped(b.sample, b.kept)) for b in blocks], format)


@boilerplate_app.command("forget")
def boilerplate_forget(site: Annotated[str, typer.Argument(help="The site (source name).")],
                       block: Annotated[str, typer.Argument(help="The block hash (`list`).")],
                       db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Forget a learned block for good and re-clean the stored articles that held it."""
    from flows.dedupe import keep_lists, pattern_lists
    from newsflow.config import load_registry
    from storage.memory import retry_out_of_memory
    from tasks.dedupe import run_all
    from tasks.dedupe_prepare import forget_block
    from tasks.store import guarded_writer

    registry = load_registry(sources)  # the re-cleaning applies the sources' patterns
    path = existing_db(db)

    @retry_out_of_memory("forget a learned block")
    def forget() -> int:
        with guarded_writer(path) as con:
            try:
                return forget_block(con, site, block.strip().lower())
            except KeyError:
                raise NewsflowError(f"{path}: site {site!r} has no learned block {block!r} (see "
                                    f"`newsflow boilerplate list {site}`)") from None

    flagged = forget()
    # The dedupe, plainly: it re-cleans the flagged articles from raw_text and re-signs them.
    stats = run_all(path, patterns=pattern_lists(registry), keep=keep_lists(registry))
    out.print(f"forgot block {block} of {site}: {flagged} stored articles flagged, "
              f"{stats.recleaned} texts re-cleaned, {stats.articles_processed} articles re-signed",
              soft_wrap=True)


@failures_app.command("reset")
def failures_reset(
        source: Annotated[str | None, typer.Option(help="Only this source's failures.")] = None,
        reason: Annotated[str | None, typer.Option(
            help="Only failures with this reason (http_403, timeout, ...).")] = None,
        db: DbOpt = None, sources: SourcesOpt = None) -> None:
    """Make failed URLs due again (a site that blocked us has stopped): the next run retries them."""
    from newsflow.config import load_registry
    from newsflow.reasons import Reason, is_reason
    from storage import writes
    from storage.db import db_path, reader, writer
    from storage.memory import retry_out_of_memory
    from storage.reads import failure_labels

    if reason is not None and not is_reason(reason):
        raise NewsflowError(f"--reason {reason!r}: not a failure reason (the reasons: "
                            f"{', '.join(Reason)}, http_NNN)")
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

    @retry_out_of_memory("reset failures")
    def reset() -> int:
        with writer(path) as con:
            return writes.reset_failures(con, source, reason)

    n = reset()
    what = " ".join(filter(None, [f"of source {source}" if source else "",
                                  f"with reason {reason}" if reason else ""]))
    out.print(f"{n} failed URL(s){' ' + what if what else ''} are due again: the next run "
              "retries them", highlight=False)
