"""Election of a story's original: each rule in its order, and a late original taking over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from newsflow.dedupe.election import Member, elect
from tests.dedupe.conftest import Store, aggregator_copy

T = datetime(2024, 1, 1, tzinfo=UTC)


def _m(aid: str, kind: str, minutes: int = 0, **kw: object) -> Member:
    return Member(article_id=aid, url=f"https://{aid}.example/story", kind=kind,
                  fetched_at=T + timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def test_canonical_link_beats_source_kind() -> None:
    members = [_m("orig", "original"),
               _m("agg", "aggregator", 10),
               _m("synd", "syndicator", 5, canonical_url="https://agg.example/story")]
    assert elect(members) == "agg"


def test_canonical_chain_ends_at_the_member_pointing_nowhere() -> None:
    members = [_m("a", "aggregator", canonical_url="https://b.example/story"),
               _m("b", "syndicator", canonical_url="https://c.example/story"),
               _m("c", "original", 9, canonical_url="https://c.example/story")]
    assert elect(members) == "c"


def test_attribution_link_beats_source_kind() -> None:
    members = [_m("agg1", "aggregator", 0),
               _m("agg2", "aggregator", 5, links=("https://www.agg3.example/story/",)),
               _m("agg3", "unknown", 9),
               _m("synd", "syndicator", 1)]
    assert elect(members) == "agg3"


def test_source_kind_beats_dates_and_fetch_time() -> None:
    members = [_m("agg", "aggregator", 0, published_at=T - timedelta(days=9), date_trusted=True),
               _m("synd", "syndicator", 5, published_at=T - timedelta(days=5), date_trusted=True),
               _m("orig", "original", 9, published_at=T, date_trusted=True)]
    assert elect(members) == "orig"
    assert elect(members[:2]) == "synd"


def test_earliest_trusted_date_wins_and_untrusted_dates_do_not_count() -> None:
    members = [_m("copyright", "aggregator", 0, published_at=T - timedelta(days=400),
                  date_trusted=False),  # e.g. a date only a "(c) 2023" line gave
               _m("later", "aggregator", 1, published_at=T + timedelta(hours=5), date_trusted=True),
               _m("first", "aggregator", 2, published_at=T, date_trusted=True),
               _m("undated", "aggregator", 3)]
    assert elect(members) == "first"


def test_first_fetched_breaks_the_remaining_ties() -> None:
    members = [_m("b", "aggregator", 7), _m("a", "aggregator", 3), _m("c", "unknown", 5)]
    assert elect(members) == "a"


def test_original_arriving_after_its_copies_takes_over(store: Store,
                                                      real_texts: dict[str, list[str]]) -> None:
    story = real_texts["kxan-voters"]
    url = "https://www.kxan.com/news/texas/voters-pass-increase/"
    early = store.add("https://mirrorhub.example/voters/", aggregator_copy(story, drop=3),
                      source="mirrorhub", published=datetime(2023, 1, 1, tzinfo=UTC),
                      trusted=False)
    synd = store.add("https://www.kvtn4.example/news/national/voters/", story, source="station",
                     minutes=10)
    store.dedupe()
    sid = store.story_of(early)
    assert store.story_of(synd) == sid and store.original_of(early) == synd
    orig = store.add(url, story, source="kxan", minutes=24 * 60)
    store.dedupe()
    assert store.story_of(orig) == sid  # the story keeps its id
    assert store.original_of(early) == orig
    assert store.member(synd)[0] == "copy" and store.member(orig) == ("original", 1.0, "self")
