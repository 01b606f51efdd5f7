"""Helpers of the flow-level hardening and fault tests: synthetic article pages, registries, reads."""

from __future__ import annotations

import random
from typing import Any

from storage.db import reader
from tests.support.sites import registry  # noqa: F401  (re-exported for these tests)

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
