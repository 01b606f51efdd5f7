"""`newsflow sql --format csv` writes plain \\n line ends, so tail, sort and cut work on it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from newsflow.types import Article
from newsflow.urls import article_id
from storage import writes
from storage.db import writer
from tests.cli.conftest import run_cli


def test_csv_lines_end_with_newline_only(tmp_path: Path) -> None:
    db = str(tmp_path / "n.duckdb")
    urls = [f"https://thehill.com/{n}" for n in range(3)]
    with writer(db) as con:
        writes.store_articles(con, [Article(
            article_id=article_id(u), url=u, source="thehill", text="one two, three",
            fetched_at=datetime(2024, 1, 1, tzinfo=UTC), title=f"Title, {n}")
            for n, u in enumerate(urls)])
    r = run_cli("sql", "SELECT url, title FROM articles ORDER BY url", "--db", db,
                "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stdout
    assert r.stdout == ("url,title\n" + "".join(f'{u},"Title, {n}"\n'
                                                for n, u in enumerate(urls)))
