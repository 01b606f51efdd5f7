"""Bounded memory: peak RSS of a whole `newsflow import-warc` process tree on a big WARC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.procs import ROLES, Measured
from bench.throughput import cli_import, cli_phases


def measure(warc: Path, pages: int, workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Import warc into a fresh DB; peak RSS (main, extraction workers, Prefect server) and time."""
    db = workdir / "memory.duckdb"
    m = cli_import(warc, db, env, memory=True)
    phases = cli_phases(m)
    db_bytes = sum(f.stat().st_size for f in (db, db.with_name(db.name + ".wal")) if f.exists())
    return {"pages": pages, "peak_rss_mb": m.peak_rss_mb, "peak_pss_mb": m.peak_pss_mb,
            "peak_rss_without_prefect_server_mb": m.peak_rss_own_mb, "wall_s": m.wall,
            "warc_mb": warc.stat().st_size / 2**20, "db_mb": db_bytes / 2**20,
            "db_kb_per_page": db_bytes / 1024 / pages, **phases,
            "peak_rss_by_phase_mb": by_phase(m, phases), "peak_total_at_s": peak_at(m)}


def by_phase(m: Measured, phases: dict[str, float]) -> dict[str, dict[str, float]]:
    """Peak RSS MB of each process role (bench.procs.ROLES) in start-up, import and after it
    (dedupe, the run summary): which process peaks when."""
    begin = phases["startup_s"]
    imported = begin + phases["import_s"]
    spans = {"startup": (0.0, begin), "import": (begin, imported), "after_import": (imported, m.wall + 1)}
    out = {}
    for name, (start, end) in spans.items():
        peaks = m.role_peaks(start, end)
        out[name] = {role: round(peaks[role], 1) for role in ROLES if role in peaks}
    return out


def peak_at(m: Measured) -> float | None:
    """Seconds after start of the tree's peak RSS sample."""
    best = max(m.timeline, key=lambda s: s[1].get("total", 0.0), default=None)
    return round(best[0], 1) if best else None
