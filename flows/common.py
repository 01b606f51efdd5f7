"""What every ingest-like flow does at its end: run record, artifacts, the ingested event."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, TypeVar, cast

import duckdb
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from prefect.utilities.annotations import quote

from newsflow.types import Failure, SourceStats
from storage import writes
from storage.db import reader
from storage.memory import retry_out_of_memory
from storage.reads import dedupe_pending, flagged_sources
from tasks.store import BatchOutcome, guarded_writer

INGESTED_EVENT = "news.articles.ingested"
# Resource label of the event: "pending" when the run left its new articles to the dedupe
# deployment (whose trigger in prefect.yaml matches only that), "done" when it deduped them
# itself. One dedupe per ingest, whichever side runs it.
DEDUPE_LABEL = "newsflow.dedupe"
T = TypeVar("T")


def unwalked(value: T) -> T:
    """value wrapped in Prefect's quote(): a task parameter Prefect will not walk (typed as value)."""
    return cast(T, quote(value))


class RunStats:
    """Per-source counters of one run, fed by discovery, fetch and store outcomes."""

    def __init__(self) -> None:
        self.by_source: dict[str, SourceStats] = {}
        self.new_article_ids: list[str] = []
        self.skipped_known = 0
        self.counts: Counter[str] = Counter()  # run-wide counts: WARC revisits, redirects, ...

    def of(self, source: str) -> SourceStats:
        return self.by_source.setdefault(source, SourceStats(source=source))

    def add_outcome(self, out: BatchOutcome) -> None:
        for source, n in out.new_articles.items():
            self.of(source).new_articles += n
        self.new_article_ids.extend(out.new_article_ids)
        self.add_failures(out.failures)

    def add_failures(self, failures: Iterable[Failure]) -> None:
        for f in failures:
            self.of(f.source).add_failure(f.reason)

    @property
    def new_articles(self) -> int:
        return sum(s.new_articles for s in self.by_source.values())

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.by_source.values())

    def rows(self) -> list[dict[str, Any]]:
        """One row per source for the table artifact, reasons spelled out."""
        out = []
        for s in sorted(self.by_source.values(), key=lambda s: s.source):
            row = asdict(s)
            row["failures_by_reason"] = ", ".join(
                f"{k}: {v}" for k, v in sorted(s.failures_by_reason.items())) or "-"
            out.append(row)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"new_articles": self.new_articles, "failed": self.failed,
                "skipped_known": self.skipped_known, **self.counts, "sources": self.rows()}


def close_run(con: duckdb.DuckDBPyConnection, run_id: str, stats: RunStats, *,
              status: str = "completed") -> dict[str, int]:
    """Close the run record in the caller's transaction; the flagged sources' failing streaks."""
    writes.finish_run(con, run_id, status, stats.as_dict())
    return flagged_sources(con)


def publish(db: str, run_id: str, flow: str, stats: RunStats, failing: dict[str, int]) -> None:
    """Publish the per-source table artifact."""
    rows = stats.rows()
    for row in rows:  # sources failing several runs in a row stand out in the UI
        n = failing.get(row["source"])
        row["health"] = f"FLAGGED: failing {n} runs in a row" if n else "ok"
    create_table_artifact(
        key=f"{flow}-summary",
        table=rows or [{"source": "-", "note": "nothing to do"}],
        description=f"newsflow {flow} run {run_id}: {stats.new_articles} new articles, "
                    f"{stats.failed} failures"
                    + (f"; flagged sources: {', '.join(sorted(failing))}" if failing else ""),
    )


def announce(db: str, run_id: str, flow: str, stats: RunStats, *, deduped: bool) -> bool:
    """Emit the ingested event when the run stored new articles (returns whether it did).

    deduped: the run ran the dedupe itself (a CLI run): the event says so and the dedupe
    deployment stands down; otherwise (a deployment's run) it runs on this event. A run that
    stored nothing emits nothing: no empty dedupe runs.
    """
    if not stats.new_articles:
        return False
    state = "done" if deduped else "pending"
    emit_event(
        event=INGESTED_EVENT,
        resource={"prefect.resource.id": f"newsflow.db.{db}", "prefect.resource.name": db,
                  DEDUPE_LABEL: state},
        payload={"run_id": run_id, "flow": flow, "db": db, "new_articles": stats.new_articles,
                 "failed": stats.failed, "dedupe": state},
    )
    return True


@retry_out_of_memory("close the run record")
def finish(db: str, run_id: str, flow: str, stats: RunStats, *, status: str = "completed") -> None:
    """Close the run record and publish the per-source table artifact (announce() follows,
    once the run's own dedupe, if any, is done)."""
    with guarded_writer(db) as con:
        failing = close_run(con, run_id, stats, status=status)
    publish(db, run_id, flow, stats, failing)


@retry_out_of_memory("open the run record")
def begin(db: str, run_id: str, flow: str, params: dict[str, Any]) -> None:
    """Record the start of a run."""
    with guarded_writer(db) as con:
        writes.start_run(con, run_id, flow, params)


def anything_to_dedupe(db: str) -> bool:
    """Whether any article waits for dedupe (new, re-extracted or flagged dirty): one short read,
    no numpy (an unchanged re-run asks this and needs nothing else of dedupe)."""
    with reader(db) as con:
        return dedupe_pending(con)


def run_dedupe_flow(db: str, sources_file: str) -> None:
    """Merge the new articles into stories, when any are pending (a CLI run's own dedupe)."""
    from flows.dedupe import dedupe

    # Nothing new or dirty (an unchanged re-run): skip the dedupe, and its database reads.
    if not anything_to_dedupe(db):
        return
    # The dedupe flow's body, not a subflow: its tasks and artifact join this run, without a
    # subflow run's own creation and teardown (docs/performance.md). Deployments still run
    # dedupe as its own flow, on the ingested event.
    dedupe.fn(db=db, sources_file=sources_file)
