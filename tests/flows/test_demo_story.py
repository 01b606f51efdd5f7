"""The demo's seed case, imported: The Hill's original, KXAN's syndication, the reworded copy."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from flows.import_warc import import_warc
from storage.db import reader

pytestmark = pytest.mark.usefixtures("prefect_api")
HILL_URL = "https://thehill.com/policy/international/4190000-us-warns-north-korea-arms-russia/"
KXAN_URL = ("https://www.kxan.com/news/national-politics/the-hill/"
            "us-warns-north-korea-against-supplying-arms-to-russia/")
SEED_URL = ("https://vigourtimes.com/"
            "us-issues-warning-to-north-korea-regarding-arms-supply-to-russia/")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo WARC imported and deduplicated once for the tests below."""
    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    warc = resources.files("newsflow").joinpath("data/demo.warc.gz")
    with resources.as_file(warc) as path:
        import_warc(paths=[str(path)], db=str(db), workers=2)
    return db


def _rows(db: Path, sql: str) -> dict[str, tuple[Any, ...]]:
    """url -> the rest of each row, for the three North Korea pages."""
    with reader(db) as con:
        rows = con.execute(sql, [[HILL_URL, KXAN_URL, SEED_URL]]).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_seed_copy_keeps_its_provenance(demo_db: Path) -> None:
    got = _rows(demo_db, "SELECT url, attribution_url, credited_publisher, published_at, "
                         "date_trusted FROM articles WHERE url IN (SELECT unnest(?))")
    attribution, credited, published, trusted = got[SEED_URL]
    assert attribution == HILL_URL and credited == "Nexstar Media Inc."
    assert published is None or not trusted  # its only dates are "(c) 2023" lines
    # The Hill and KXAN print Nexstar's line too: it is their own publisher's.
    assert got[HILL_URL][:2] == (None, None) and got[KXAN_URL][:2] == (None, None)
    assert got[HILL_URL][2] == datetime(2023, 9, 5, 17, 32, tzinfo=UTC)  # 13:32 -04:00
    assert got[KXAN_URL][2] == datetime(2023, 9, 5, 18, 10, tzinfo=UTC)


def test_kxan_syndication_is_a_copy_of_the_hill(demo_db: Path) -> None:
    got = _rows(demo_db, "SELECT url, story_id, role, match_method FROM story_members "
                         "WHERE url IN (SELECT unnest(?))")
    assert got[HILL_URL][1:] == ("original", "self")
    assert got[KXAN_URL] == (got[HILL_URL][0], "copy", "canonical")
    with reader(demo_db) as con:
        story = con.execute("SELECT published_at FROM stories WHERE story_id = ?",
                            [got[HILL_URL][0]]).fetchone()
    assert story == (datetime(2023, 9, 5, 17, 32, tzinfo=UTC),)  # the original's, to the minute


def test_reworded_seed_copy_joins_the_hill_story(demo_db: Path) -> None:
    got = _rows(demo_db, "SELECT url, story_id, role, match_method FROM story_members "
                         "WHERE url IN (SELECT unnest(?))")
    assert got[HILL_URL][1] == "original"
    assert got[SEED_URL] == (got[HILL_URL][0], "copy", "reworded")
