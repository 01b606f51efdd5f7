"""The stories / story_members contract, its invariants, and idempotent re-runs."""

from __future__ import annotations

from storage.db import reader
from tests.dedupe.conftest import Store, aggregator_copy

STORIES_COLUMNS = ["story_id", "original_article_id", "original_url", "original_source", "title",
                   "member_count", "first_seen_at", "published_at"]  # published_at: added after
MEMBERS_COLUMNS = ["story_id", "article_id", "url", "source", "role", "similarity",
                   "match_method"]


def _fill(store: Store, real_texts: dict[str, list[str]]) -> None:
    for i, name in enumerate(("thehill-meth", "kxan-voters", "guardian-valencia")):
        url = f"https://thehill.com/news/{name}"
        store.add(url, real_texts[name], source="thehill", minutes=i)
        store.add(f"https://mirrorhub.example/{name}/", aggregator_copy(real_texts[name], drop=1),
                  source="mirrorhub", minutes=30 + i)
        store.add(f"https://www.kvtn4.example/news/{name}/", real_texts[name], source="station",
                  minutes=20 + i, canonical=url)
    store.add("https://apnews.com/article/mexico", real_texts["apnews-mexico"], source="apnews")


def test_views_have_the_contract_columns(store: Store) -> None:
    with reader(store.db) as con:
        assert [r[0] for r in con.execute("DESCRIBE stories").fetchall()] == STORIES_COLUMNS
        assert [r[0] for r in con.execute("DESCRIBE story_members").fetchall()] == MEMBERS_COLUMNS


def test_every_article_in_one_story_with_one_original(store: Store,
                                                      real_texts: dict[str, list[str]]) -> None:
    _fill(store, real_texts)
    stats = store.dedupe(batch_size=3)
    assert stats.articles_processed >= 10  # pages re-cleaned after learning count again
    with reader(store.db) as con:
        missing = con.execute("SELECT count(*) FROM article_records WHERE article_id NOT IN "
                              "(SELECT article_id FROM story_members)").fetchone()
        twice = con.execute("SELECT count(*) FROM (SELECT article_id FROM story_members "
                            "GROUP BY 1 HAVING count(*) > 1)").fetchone()
        originals = con.execute("SELECT story_id, count(*) FILTER (role = 'original') "
                                "FROM story_members GROUP BY 1").fetchall()
        stories = con.execute("SELECT member_count, original_source FROM stories "
                              "ORDER BY member_count DESC, original_source").fetchall()
        methods = {r[0] for r in con.execute("SELECT match_method FROM story_members").fetchall()}
    assert missing == (0,) and twice == (0,)
    assert all(n == 1 for _, n in originals)
    assert stories == [(3, "thehill"), (3, "thehill"), (3, "thehill"), (1, "apnews")]
    assert methods == {"self", "canonical", "minhash"}


def test_second_run_changes_nothing(store: Store, real_texts: dict[str, list[str]]) -> None:
    _fill(store, real_texts)
    store.dedupe(batch_size=4)
    before = store.dump()
    again = store.dedupe()
    assert again.articles_processed == 0 and again.new_stories == 0
    assert store.dump() == before


def test_batch_size_does_not_change_the_outcome(store: Store, tmp_path: object,
                                                real_texts: dict[str, list[str]]) -> None:
    import shutil

    _fill(store, real_texts)
    other = Store(store.db.replace("d.duckdb", "e.duckdb"))
    shutil.copy(store.db, other.db)
    store.dedupe(batch_size=1)
    other.dedupe(batch_size=100)
    assert store.dump() == other.dump()
