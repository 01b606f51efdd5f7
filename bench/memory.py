"""Bounded memory: peak RSS of a whole `newsflow import-warc` process tree on a big WARC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.throughput import cli_import, cli_phases


def measure(warc: Path, pages: int, workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Import warc into a fresh DB; peak RSS (main, extraction workers, Prefect server) and time."""
    db = workdir / "memory.duckdb"
    m = cli_import(warc, db, env)
    phases = cli_phases(m)
    db_bytes = sum(f.stat().st_size for f in (db, db.with_name(db.name + ".wal")) if f.exists())
    return {"pages": pages, "peak_rss_mb": m.peak_rss_mb, "peak_pss_mb": m.peak_pss_mb,
            "peak_rss_without_prefect_server_mb": m.peak_rss_own_mb, "wall_s": m.wall,
            "warc_mb": warc.stat().st_size / 2**20, "db_mb": db_bytes / 2**20,
            "db_kb_per_page": db_bytes / 1024 / pages, **phases}
