"""Candidates and verification: partial copies merge; digests and shared chrome never do."""

from __future__ import annotations

from newsflow.dedupe.verify import overlap, same_story, text_sig
from tests.dedupe.conftest import DISCLAIMER, Store, aggregator_copy

LONG = ("thehill-meth", "thehill-omar", "kxan-voters", "foxnews-china", "venturebeat-wework",
        "threatpost-android")


def _lead(paragraphs: list[str]) -> str:
    return next(p for p in paragraphs if len(p.split()) >= 15)


def test_partial_copy_with_a_dropped_paragraph_merges(store: Store,
                                                     real_texts: dict[str, list[str]]) -> None:
    story = real_texts["foxnews-china"]
    orig = store.add("https://www.foxnews.com/politics/china-police", story, source="foxnews")
    copy = store.add("https://mirrorhub.example/china-police/",
                     aggregator_copy(story, drop=4), source="mirrorhub", minutes=30)
    other = store.add("https://www.kxan.com/news/voters/", real_texts["kxan-voters"],
                      source="kxan", minutes=5)
    store.dedupe()
    assert store.story_of(copy) == store.story_of(orig) != store.story_of(other)
    role, similarity, method = store.member(copy)
    assert (role, method) == ("copy", "minhash") and similarity > 0.8
    assert store.member(orig) == ("original", 1.0, "self")


def test_digest_quoting_leads_merges_with_no_story(store: Store,
                                                  real_texts: dict[str, list[str]]) -> None:
    ids = {}
    for i, name in enumerate(LONG):
        ids[name] = store.add(f"https://www.thehill.com/{name}", real_texts[name],
                              source="thehill", minutes=i)
    for d, picks in enumerate((LONG[:4], LONG[2:])):  # two digests on one site
        body = ["Here are the stories people are reading today, in brief."]
        for name in picks:
            body += [name.replace("-", " ").title(), _lead(real_texts[name]), "Read more"]
        ids[f"digest{d}"] = store.add(f"https://digest.example/briefing-{d}/", body,
                                      source="digest", minutes=60 + d)
    store.dedupe()
    assert len({store.story_of(a) for a in ids.values()}) == len(ids)


def test_digest_lead_overlap_is_rejected_by_verification(real_texts: dict[str, list[str]]) -> None:
    story = real_texts["threatpost-android"]
    digest = "\n".join(["Morning briefing", _lead(story), _lead(real_texts["kxan-voters"])])
    o = overlap(text_sig("\n".join(story)), text_sig(digest))
    assert o.shared >= 25 and not same_story(o)


def test_short_stories_with_one_long_disclaimer_stay_apart(store: Store,
                                                          real_texts: dict[str, list[str]]) -> None:
    # Briefs shorter than the disclaimer they carry, arriving one by one: the first two share
    # more disclaimer than story before the disclaimer is learned.
    ids = []
    for i, name in enumerate(LONG):
        brief = real_texts[name][:2]
        ids.append(store.add(f"https://mirrorhub.example/brief-{i}/", [*brief, *DISCLAIMER,
                                                                       *DISCLAIMER[:2]],
                             source="mirrorhub", minutes=i))
        store.dedupe()
    assert len({store.story_of(a) for a in ids}) == len(ids)
    assert all(DISCLAIMER[0] not in store.text(a)[0] for a in ids)


def test_url_variants_and_canonical_links_merge(store: Store,
                                               real_texts: dict[str, list[str]]) -> None:
    story = real_texts["thehill-omar"]
    url = "https://thehill.com/blogs/news/471031-omar"
    orig = store.add(url, story, source="thehill")
    amp = store.add(url + "/amp/", story[:-1], source="thehill", minutes=5, canonical=url)
    synd = store.add("https://www.kvtn4.example/news/national/omar/", story, source="station",
                     minutes=9, canonical=url)
    store.dedupe()
    assert store.member(amp)[2] == "url" and store.member(synd)[2] == "canonical"
    assert store.original_of(amp) == store.original_of(synd) == orig


def test_exact_copy_of_a_short_text_needs_enough_words(store: Store) -> None:
    a = store.add("https://mirrorhub.example/a/", ["Photos of the day."], source="mirrorhub")
    b = store.add("https://digest.example/b/", ["Photos of the day."], source="digest")
    store.dedupe()
    assert store.story_of(a) != store.story_of(b)
