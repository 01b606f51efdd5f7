"""dedupe flow: merge new articles into stories (after each ingest or import, or on its own)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.common import anything_to_dedupe, unwalked
from newsflow.config import load_registry
from newsflow.dedupe.types import DedupeStats
from newsflow.errors import InputFileError
from newsflow.types import Registry
from storage import dedupe as store
from storage.db import db_exists, db_path, exclusive, reader
from storage.reads import sources_match
from tasks.dedupe import add_stats, batch_size_for, match_batch, prepare_batch, write_batch
from tasks.dedupe_prepare import apply_keep_blocks
from tasks.store import register_sources

BATCH = 2000  # least articles per task: Prefect's fixed cost per task run is noise beside it
ARTIFACT_STORIES = 10


def _sources_stored(db: str, registry: Registry) -> bool:
    """Whether the database already holds the registry's sources as they are."""
    with reader(db) as con:
        return sources_match(con, registry)


def pattern_lists(registry: Registry) -> dict[str, list[str]]:
    """Each source's sources.toml boilerplate patterns (sources without any left out)."""
    return {s.name: list(s.boilerplate) for s in registry.sources if s.boilerplate}


def keep_lists(registry: Registry) -> dict[str, list[str]]:
    """Each source's sources.toml keep_blocks (every source: an emptied list must be seen)."""
    return {s.name: list(s.keep_blocks) for s in registry.sources}


def _cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")[:120]


def stories_markdown(db: str, limit: int = ARTIFACT_STORIES) -> str:
    """The newest stories with their copies, as a markdown report."""
    with reader(db) as con:
        stories = store.newest_stories(con, limit)
        copies = store.copies_of(con, [s[0] for s in stories])
    lines = ["# Newest stories", ""]
    for sid, url, source, title, n, first in stories:
        lines += [f"## {_cell(title) or '(untitled)'}", "",
                  f"original: [{_cell(url)}]({url}) ({_cell(source)}), {n} member(s), "
                  f"first seen {first}", ""]
        mine = [c for c in copies if c[0] == sid]
        if mine:
            lines += ["| copy | source | similarity | method |", "|---|---|---|---|"]
            lines += [f"| {_cell(c[1])} | {_cell(c[2])} | {c[4]:.3f} | {c[5]} |" for c in mine]
            lines.append("")
    return "\n".join(lines)


@flow(name="dedupe")
def dedupe(db: str | None = None, sources_file: str | None = None,
           batch_size: int = BATCH) -> dict[str, Any]:
    """Learn boilerplate, find and verify copies of the new articles, update stories."""
    logger = get_run_logger()
    dbp = str(db_path(db))
    if not db_exists(dbp):
        raise InputFileError(dbp, "no such database (import or ingest something first)")
    registry = load_registry(sources_file)
    # Source kinds decide elections: keep the sources table in step. An import has just done
    # it, so read first: a writer transaction and its task run are a visible part of a dedupe.
    if sources_file and not _sources_stored(dbp, registry):
        register_sources(dbp, registry)
    patterns = pattern_lists(registry)
    keep = keep_lists(registry)
    # On a lake, one dedupe at a time across every machine (each batch reads the stories
    # the last one wrote); on a file this is a no-op.
    with exclusive(dbp, "dedupe"):
        # The allow-lists may have changed since the last run: set aside what they now match and
        # flag its pages, so the loop below cleans them again.
        apply_keep_blocks(dbp, keep)
        total = DedupeStats()
        batches = 0
        size = batch_size_for(dbp, batch_size)
        # A read before each round: the round after the last batch found nothing to do in a writer
        # transaction and a task run of its own.
        while anything_to_dedupe(dbp):
            prepared = prepare_batch(dbp, size, patterns, keep)
            if not prepared.items:
                break
            # quote(): Prefect would otherwise walk every article, signature and edge of the
            # batch looking for futures, on each task run.
            matched = match_batch(dbp, unwalked(prepared))
            add_stats(total, write_batch(dbp, unwalked(prepared), unwalked(matched)))
            batches += 1
    logger.info("dedupe: %d articles in %d batch(es), %d new stories, %d copies merged, "
                "%d boilerplate blocks learned", total.articles_processed, batches,
                total.new_stories, total.copies_merged, total.boilerplate_learned)
    if total.articles_processed:
        create_markdown_artifact(key="dedupe-stories", markdown=stories_markdown(dbp),
                                 description=f"newsflow dedupe: {total.new_stories} new stories, "
                                             f"{total.copies_merged} copies merged")
    return {"new_stories": total.new_stories, "copies_merged": total.copies_merged,
            "articles_processed": total.articles_processed,
            "boilerplate_learned": total.boilerplate_learned, "recleaned": total.recleaned,
            "candidates": total.candidates, "edges": total.edges, "batches": batches,
            "by_method": dict(sorted(total.by_method.items()))}
