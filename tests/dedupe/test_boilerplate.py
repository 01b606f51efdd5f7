"""Per-site boilerplate: learned from recurring blocks, never from one story's own paragraphs."""

from __future__ import annotations

from storage.db import reader
from tasks.boilerplate import PageLines, block_hash, blocks_of, clean_text, is_boilerplate
from tests.dedupe.conftest import DISCLAIMER, Store, aggregator_copy

STORIES = ("thehill-meth", "kxan-voters", "foxnews-china", "venturebeat-wework")


def _page(aid: str, *lines: str) -> PageLines:
    return PageLines(article_id=aid, lines=tuple((block_hash(x), x) for x in lines))


A1 = "The council voted on Tuesday to close the old bridge for repairs until next spring."
B1 = "A storm knocked out power to thousands of homes along the coast on Sunday night."
C1 = "The museum opened a new wing dedicated to the history of the harbor and its ferries."


def test_block_on_three_different_pages_is_boilerplate() -> None:
    pages = [_page("a", "Leave a Comment", A1), _page("b", "Leave a Comment", B1),
             _page("c", "Leave a Comment", C1)]
    assert is_boilerplate(pages)
    assert not is_boilerplate(pages[:2])


def test_paragraph_of_one_story_in_three_copies_is_not_boilerplate() -> None:
    # Three copies of one story on one site: all their paragraphs recur, but the pages are not
    # about different things, so nothing recurring here is chrome.
    pages = [_page("a", "A quote.", A1, B1, "Posted by admin"), _page("b", "A quote.", A1, B1),
             _page("c", "A quote.", A1, B1, "Share this story")]
    assert not is_boilerplate(pages)


def test_story_republished_with_reworded_leads_is_not_boilerplate() -> None:
    # One story six times on one site, each copy with its own wording of the first
    # paragraphs (the bench set's copies, or a site re-running a story with a new top): its
    # body paragraphs recur on six pages and each copy's leads are blocks of its own, yet the
    # leads still read alike, so the copies count once and the body stays.
    pages = [_page(f"copy{k}", f"Update {k}: {A1}", f"Update {k}: {B1}", C1, "Body paragraph.")
             for k in range(6)]
    assert not is_boilerplate(pages)
    # ... or with a lead line of random words each (the bench set's copies): near-duplicates.
    pages = [_page(f"copy{k}", f"Update {k}: {w}.", A1, B1, C1) for k, w in
             enumerate(("court vote storm", "river budget ferry", "tunnel museum rally"))]
    assert not is_boilerplate(pages)


def test_briefs_shorter_than_their_disclaimer_teach_it() -> None:
    disclaimer = [f"Disclaimer line {i} of this aggregator, all rights to their owners." for i in
                  range(4)]
    pages = [_page(aid, text, *disclaimer) for aid, text in (("a", A1), ("b", B1), ("c", C1))]
    assert is_boilerplate(pages)


def test_pages_holding_only_the_block_say_nothing() -> None:
    pages = [_page("a", "Leave a Comment"), _page("b", "Leave a Comment"),
             _page("c", "Leave a Comment", C1)]
    assert not is_boilerplate(pages)


def test_clean_text_strips_learned_blocks_and_patterns() -> None:
    import re

    raw = "Para one.\nADVERTISEMENT\nPara two.\nRelated: something else"
    hashes = {h for h, line in blocks_of(raw).items() if line == "ADVERTISEMENT"}
    assert clean_text(raw, hashes, [re.compile(r"^Related:")]) == "Para one.\nPara two."


def test_disclaimer_learned_as_pages_arrive_one_at_a_time(store: Store,
                                                         real_texts: dict[str, list[str]]) -> None:
    ids = []
    for i, name in enumerate(STORIES):
        ids.append(store.add(f"https://mirrorhub.example/{name}/",
                             aggregator_copy(real_texts[name]), source="mirrorhub", minutes=i))
        store.dedupe()
        if i == 1:  # two pages: not enough to call anything chrome, and they are not merged
            assert DISCLAIMER[0] in store.text(ids[0])[0]
            assert store.story_of(ids[0]) != store.story_of(ids[1])
    for aid in ids:  # the third page taught the disclaimer; the first two were cleaned again
        text, raw = store.text(aid)
        assert all(d not in text for d in DISCLAIMER) and "ADVERTISEMENT" not in text
        assert DISCLAIMER[0] in raw  # raw_text is kept, so cleaning can be redone
    assert len({store.story_of(a) for a in ids}) == len(ids)
    with reader(store.db) as con:
        learned = {r[0] for r in con.execute(
            "SELECT sample FROM boilerplate_blocks WHERE site = 'mirrorhub'").fetchall()}
    assert {d[:300] for d in DISCLAIMER} <= learned  # samples are cut at 300 characters


def test_paragraph_quoted_in_two_copies_is_kept(store: Store,
                                               real_texts: dict[str, list[str]]) -> None:
    story = real_texts["thehill-omar"]
    a = store.add("https://mirrorhub.example/omar-1/", aggregator_copy(story), source="mirrorhub")
    b = store.add("https://mirrorhub.example/omar-2/", aggregator_copy(story, drop=2),
                  source="mirrorhub", minutes=1)
    for i, name in enumerate(STORIES):
        store.add(f"https://mirrorhub.example/{name}/", aggregator_copy(real_texts[name]),
                  source="mirrorhub", minutes=2 + i)
    store.dedupe(batch_size=2)
    for aid in (a, b):
        text = store.text(aid)[0]
        assert story[0] in text and story[5] in text and DISCLAIMER[0] not in text
    assert store.story_of(a) == store.story_of(b)


def test_source_patterns_add_to_learning(store: Store, real_texts: dict[str, list[str]]) -> None:
    aid = store.add("https://mirrorhub.example/x/", [*real_texts["kxan-voters"],
                                                     "Follow us on Telegram for more"],
                    source="mirrorhub")
    store.dedupe(patterns={"mirrorhub": [r"(?i)^follow us on telegram"]})
    text, raw = store.text(aid)
    assert "Telegram" not in text and "Telegram" in raw
