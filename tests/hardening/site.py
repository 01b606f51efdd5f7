"""Helpers of the flow-level hardening and fault tests: synthetic article pages, registries, reads."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storage.db import reader
from tests.support.httpserver import FixtureServer

_WORDS = ("council", "budget", "river", "school", "bridge", "harvest", "mayor", "storm",
          "festival", "library", "housing", "transit", "election", "museum", "hospital", "factory",
          "vineyard", "highway", "teachers", "volunteers", "drought", "clinic", "market",
          "stadium", "orchestra", "ferry", "harbour", "pension", "tariff", "wildfire")


def article_html(i: int, *, words: int = 160) -> bytes:
    """A plain news article page whose text is unique to i and ends with a marker sentence."""
    rng = random.Random(i)
    paras = []
    for p in range(4):
        body = " ".join(rng.choice(_WORDS) for _ in range(words // 4))
        paras.append(f"<p>Paragraph {p} of story {i}: {body}.</p>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Story {i}</title>"
            f"</head><body><nav><a href='/'>Home</a></nav><article><h1>Story number {i}</h1>"
            + "".join(paras) + f"<p>{end_marker(i)}</p></article><footer>(c) Fixture</footer>"
            "</body></html>").encode()


def end_marker(i: int) -> str:
    """The last sentence of story i: a stored text that contains it was not cut short."""
    return f"End of story {i} marker zq{i:04d}."


def registry(path: Path, server: FixtureServer, *, feeds: Sequence[str] = (),
             sitemaps: Sequence[str] = (), pages: Sequence[str] = (), name: str = "fixture",
             allow_private: bool = True, min_delay: float = 0.0, max_concurrency: int = 4,
             fetch: str = "") -> Path:
    """A sources.toml for one fixture source on the server, with short timeouts."""

    def urls(paths: Sequence[str]) -> str:
        return ", ".join(f'"{server.url(p)}"' for p in paths)

    path.write_text(f"""
[fetch]
allow_private_networks = {str(allow_private).lower()}
connect_timeout = 2
read_timeout = 1
total_timeout = 3
retries = 2
backoff = 0.01
obey_robots = true
{fetch}

[[sources]]
name = "{name}"
publisher = "Fixture Media"
kind = "original"
domains = ["127.0.0.1"]
feeds = [{urls(feeds)}]
sitemaps = [{urls(sitemaps)}]
pages = [{urls(pages)}]
min_delay = {min_delay}
max_concurrency = {max_concurrency}
""")
    return path


def query(db: str, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of a read-only query (a short-lived connection, so it never blocks a writer)."""
    with reader(db) as con:
        return con.execute(sql, params or []).fetchall()


def failure(db: str, url: str) -> tuple[str, str, int | None, bool, int] | None:
    """(stage, reason, last_status, transient, attempts) recorded for url, or None."""
    rows = query(db, "SELECT stage, reason, last_status, transient, attempts FROM failures "
                     "WHERE url = ?", [url])
    return rows[0] if rows else None


def article_urls(db: str) -> set[str]:
    return {str(r[0]) for r in query(db, "SELECT url FROM article_records")}
