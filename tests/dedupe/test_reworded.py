"""Reworded copies: a real original and its machine-reworded aggregator copy, merged as
'reworded'; an independent same-event article kept apart; attribution links; late originals."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest

from newsflow.dedupe import reworded as rw
from newsflow.dedupe.election import Member, elect
from newsflow.publishers import publisher_key
from newsflow.types import Article, RawPage
from tasks.extract import extract_page
from tests.dedupe.conftest import DISCLAIMER, T0, Store

DATA = Path(__file__).resolve().parents[1] / "data" / "reworded"
CASE = json.loads((DATA / "therepublic-cpd-arrests.json").read_text(encoding="utf-8"))
ORIGINAL_URL = CASE["original_url"]
COPY_URL = "https://mirrorhub.example/cpd-arrests-six-drug-probe/"
INDEPENDENT_URL = "https://dailyledger.example/2019/11/columbus-drug-arrests/"


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


@pytest.fixture(scope="module")
def original() -> list[str]:
    """The real original as newsflow extracts it."""
    body = gzip.decompress((DATA / "therepublic-cpd-arrests.html.gz").read_bytes())
    a = extract_page(RawPage(url=ORIGINAL_URL, source="republic", fetched_at=T0, body=body))
    assert isinstance(a, Article)
    return a.text.splitlines()


COPY = _paragraphs(CASE["copy_text"])
INDEPENDENT = _paragraphs(CASE["independent_text"])


def _aggregated(paragraphs: list[str]) -> list[str]:
    return [*paragraphs, "© 2019 AIM Media Indiana. All rights reserved.", "Reference",
            DISCLAIMER[0]]


def test_reworded_copy_is_merged_as_reworded(store: Store, original: list[str]) -> None:
    orig = store.add(ORIGINAL_URL, original, source="republic")
    store.dedupe()
    copy = store.add(COPY_URL, _aggregated(COPY), source="mirrorhub", minutes=90)
    stats = store.dedupe()  # the copy arrives in a later batch: found against the stored original
    assert stats.by_method == {"reworded": 1}
    assert store.story_of(copy) == store.story_of(orig)
    assert store.original_of(copy) == orig
    role, similarity, method = store.member(copy)
    assert (role, method) == ("copy", "reworded")
    assert rw.MIN_COVERAGE <= similarity <= 1.0


def test_independent_same_event_article_stays_apart(store: Store, original: list[str]) -> None:
    orig = store.add(ORIGINAL_URL, original, source="republic")
    copy = store.add(COPY_URL, _aggregated(COPY), source="mirrorhub", minutes=90)
    other = store.add(INDEPENDENT_URL, INDEPENDENT, source="ledger", minutes=60)
    store.dedupe()
    assert store.story_of(copy) == store.story_of(orig)
    assert store.story_of(other) != store.story_of(orig)
    assert store.member(other)[0] == "original"


def test_word_order_matters_to_the_alignment(original: list[str]) -> None:
    """The same sentences told in another order are not a copy: what keeps independent
    coverage (same names and numbers, its own order) apart."""
    doc, copy = rw.doc_of("\n".join(original)), rw.doc_of("\n".join(COPY))
    scrambled = rw.doc_of("\n".join(COPY[1::2] + COPY[0::2][::-1]))
    weights: dict[int, float] = {}
    assert rw.verified(rw.align(copy, doc, weights))
    assert not rw.verified(rw.align(scrambled, doc, weights))


def test_attribution_link_makes_a_pair_the_text_still_verifies(store: Store,
                                                               original: list[str]) -> None:
    orig = store.add(ORIGINAL_URL, original, source="republic")
    # A partial copy (its first third): too little of the original for the text alone.
    part = [*COPY[: len(COPY) // 3], "Reference"]
    unlinked = store.add("https://digest.example/cpd-partial/", part, source="digest")
    store.dedupe()
    assert store.story_of(unlinked) != store.story_of(orig)
    # The same text, crediting the original with a link: merged, on the text's evidence.
    linked = store.add(COPY_URL, part, source="mirrorhub", minutes=30,
                       attribution=ORIGINAL_URL.replace("http://www.", "https://"))
    # Another newsroom's story of the event, crediting the original: not a copy of it.
    stray = store.add(INDEPENDENT_URL, INDEPENDENT, source="ledger", minutes=50,
                      attribution=ORIGINAL_URL)
    store.dedupe()
    assert store.story_of(linked) == store.story_of(orig)
    assert store.member(linked)[2] == "reworded"
    assert store.story_of(stray) != store.story_of(orig)


def test_late_unlisted_original_takes_over_from_an_aggregator_copy(
        store: Store, original: list[str]) -> None:
    # The copy is fetched and deduped first, dated only by its "(c)" line (untrusted).
    copy = store.add(COPY_URL, _aggregated(COPY), source="mirrorhub",
                     published=T0 - timedelta(days=300), trusted=False,
                     attribution="https://www.therepublic.com/2019/11/20/"
                                 "cpd_arrests_six_in_drug_investigation/")
    store.dedupe()
    assert store.member(copy)[0] == "original"
    # Days later the original arrives from a site sources.toml does not list.
    orig = store.add(ORIGINAL_URL, original, source="therepublic.com", minutes=6 * 1440)
    store.dedupe()
    assert store.story_of(copy) == store.story_of(orig)
    assert store.original_of(copy) == orig
    assert store.member(copy)[:1] + store.member(copy)[2:] == ("copy", "reworded")


def _m(aid: str, kind: str, minutes: int = 0, **kw: object) -> Member:
    return Member(article_id=aid, url=f"https://{aid}.example/story", kind=kind,
                  fetched_at=T0 + timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def test_credited_publisher_lifts_an_unlisted_site_over_aggregators_only() -> None:
    copy = _m("agg", "aggregator", 0, credited_publisher="Nexstar Media Inc.")
    unlisted = _m("hill", "unknown", 60, sitename="Nexstar Media")
    assert elect([copy, unlisted]) == "hill"
    assert elect([copy, _m("hill", "unknown", 60, sitename="The Hill")]) == "agg"
    # A credit never lifts a copy's kin over a listed original.
    station = _m("station", "syndicator", 5, publisher="Nexstar Media, LLC")
    assert elect([copy, station, _m("orig", "original", 90, publisher="The Hill")]) == "orig"
    assert elect([copy, station, _m("synd2", "syndicator", 1, publisher="KVTN")]) == "station"


def test_late_unlisted_original_with_an_earlier_trusted_date_takes_over() -> None:
    copy = _m("agg", "aggregator", 0, published_at=T0, date_trusted=True)
    stamped = _m("stamped", "aggregator", 1, published_at=T0 - timedelta(days=200),
                 date_trusted=False)
    late = _m("orig", "unknown", 6 * 1440, published_at=T0 - timedelta(hours=5),
              date_trusted=True)
    assert elect([copy, stamped, late]) == "orig"


def test_publisher_key_ignores_case_punctuation_and_legal_suffixes() -> None:
    # The election compares credited publishers with newsflow.publishers' key.
    assert publisher_key("Nexstar Media Inc.") == publisher_key("NEXSTAR MEDIA, LLC")
    assert publisher_key("Nexstar Media Inc.") == publisher_key("Nexstar Media")
    assert publisher_key("") == publisher_key("Inc.") == ""


def test_index_terms_are_bounded_and_skip_common_terms() -> None:
    doc = rw.doc_of("\n".join(COPY))
    common = {t: 10_000 for t in doc.terms}
    assert rw.index_terms(doc.terms, doc.salient, common, 1_000_000) == []
    chosen = rw.index_terms(doc.terms, doc.salient, {}, 10)
    assert len(chosen) == rw.INDEX_TERMS
    assert set(chosen) <= doc.salient  # names and numbers first when every term is rare
