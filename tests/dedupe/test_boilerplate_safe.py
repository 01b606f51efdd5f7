"""Boilerplate safe and inspectable: a learned paragraph inside a story stays in articles.text;
`newsflow boilerplate list/forget` and sources.toml keep_blocks, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsflow.config import parse_registry
from newsflow.errors import ConfigError
from storage.db import reader
from tasks.boilerplate import block_hash, chrome_kind, stored_text
from tests.dedupe.conftest import DISCLAIMER, Store, aggregator_copy

# One site's 30-word context paragraph, repeated inside three of its unrelated stories.
CONTEXT = ("The state has faced mounting pressure from residents and advocacy groups over the "
           "past year, and officials say they expect further hearings on the matter before the "
           "legislative session ends.")
UNRELATED = ("thehill-meth", "kxan-voters", "foxnews-china")


def _with_context(paragraphs: list[str]) -> list[str]:
    """The story with CONTEXT after its third paragraph: story text on both sides."""
    return [*paragraphs[:3], CONTEXT, *paragraphs[3:]]


def _add_unrelated(store: Store, real_texts: dict[str, list[str]], source: str = "mirrorhub"
                   ) -> list[str]:
    return [store.add(f"https://mirrorhub.example/{name}/", aggregator_copy(
        _with_context(real_texts[name])), source=source, minutes=i)
        for i, name in enumerate(UNRELATED)]


def _learned(store: Store, site: str) -> dict[str, str]:
    with reader(store.db) as con:
        return dict(con.execute("SELECT block_hash, sample FROM boilerplate_blocks "
                                "WHERE site = ?", [site]).fetchall())


def test_context_paragraph_in_three_unrelated_articles_is_kept(
        store: Store, real_texts: dict[str, list[str]]) -> None:
    ids = _add_unrelated(store, real_texts)
    store.dedupe()
    learned = _learned(store, "mirrorhub")
    assert block_hash(CONTEXT) in learned  # learned: it recurs on unrelated pages of the site
    for aid in ids:
        text, raw = store.text(aid)
        assert CONTEXT in text  # ... but inside each story it stays
        # The aggregator's disclaimer at the article's end and its ad label still go.
        assert all(d not in text for d in DISCLAIMER) and "ADVERTISEMENT" not in text
        assert DISCLAIMER[0] in raw
    assert len({store.story_of(a) for a in ids}) == len(ids)


def test_learned_block_at_an_edge_or_of_a_chrome_kind_goes() -> None:
    story = ["The council voted on Tuesday to close the old bridge for repairs until spring.",
             "Engineers found cracks in two of its supports during an inspection last month."]
    learned = {block_hash(CONTEXT), block_hash(DISCLAIMER[0]), block_hash(DISCLAIMER[1])}
    leading = stored_text("\n".join([DISCLAIMER[1], *story, CONTEXT]), learned)
    assert leading == "\n".join(story)  # both edges
    inside = stored_text("\n".join([story[0], DISCLAIMER[0], CONTEXT, story[1]]), learned)
    assert inside == "\n".join([story[0], CONTEXT, story[1]])  # a disclaimer goes anywhere
    assert chrome_kind(DISCLAIMER[0]) == "disclaimer" and chrome_kind(CONTEXT) is None
    # A story's own paragraph about copyright is no disclaimer; a newsletter pitch is chrome.
    assert chrome_kind("The lawsuit alleges copyright infringement by the company over the "
                       "songs it used in its adverts.") is None
    assert chrome_kind("Sign up for our free daily newsletter to get the top stories in your "
                       "inbox.") == "call to action"


def newsflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsflow", *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))


def test_list_and_forget_through_the_cli(store: Store, real_texts: dict[str, list[str]],
                                         tmp_path: Path) -> None:
    # The context paragraph at the END of each story: stripped there, by position.
    ids = [store.add(f"https://mirrorhub.example/{name}/", [*real_texts[name], CONTEXT],
                     source="mirrorhub", minutes=i) for i, name in enumerate(UNRELATED)]
    store.dedupe()
    assert all(CONTEXT not in store.text(a)[0] for a in ids)
    h = block_hash(CONTEXT)
    r = newsflow("boilerplate", "list", "mirrorhub", "--db", store.db, "-f", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["block"]: row for row in json.loads(r.stdout)}
    assert rows[h]["site"] == "mirrorhub" and rows[h]["pages"] == 3
    assert rows[h]["sample"] == CONTEXT and rows[h]["stripped"] == "at edges only"
    r = newsflow("boilerplate", "forget", "mirrorhub", h, "--db", store.db)
    assert r.returncode == 0, r.stderr
    assert "3 texts re-cleaned" in r.stdout
    assert all(CONTEXT in store.text(a)[0] for a in ids)
    # Not learned again when another page with it arrives.
    more = store.add("https://mirrorhub.example/venturebeat-wework/",
                     [*real_texts["venturebeat-wework"], CONTEXT], source="mirrorhub", minutes=9)
    store.dedupe()
    assert h not in _learned(store, "mirrorhub") and CONTEXT in store.text(more)[0]
    r = newsflow("boilerplate", "list", "--db", store.db, "-f", "json")
    assert {row["stripped"] for row in json.loads(r.stdout) if row["block"] == h} == {
        "never (forgotten)"}
    r = newsflow("boilerplate", "forget", "mirrorhub", "0123456789abcdef", "--db", store.db)
    assert r.returncode == 1 and "no learned block" in r.stderr and "Traceback" not in r.stderr
    r = newsflow("boilerplate", "list", "--db", str(tmp_path / "none.duckdb"))
    assert r.returncode == 1 and "none.duckdb" in r.stderr


def test_keep_blocks_allow_list_is_honoured_and_undone(
        store: Store, real_texts: dict[str, list[str]]) -> None:
    ids = [store.add(f"https://mirrorhub.example/{name}/", [*real_texts[name], CONTEXT],
                     source="mirrorhub", minutes=i) for i, name in enumerate(UNRELATED)]
    store.dedupe()
    assert all(CONTEXT not in store.text(a)[0] for a in ids)
    keep = {"mirrorhub": ["mounting pressure from residents"]}
    stats = store.dedupe(keep=keep)  # the list changed: the three are cleaned again
    assert stats.recleaned == 3 and all(CONTEXT in store.text(a)[0] for a in ids)
    assert block_hash(CONTEXT) not in _learned(store, "mirrorhub")
    assert store.dedupe(keep=keep).articles_processed == 0  # idempotent
    # Off the list: learnable again, learned when the next page holding it arrives.
    store.add("https://mirrorhub.example/venturebeat-wework/",
              [*real_texts["venturebeat-wework"], CONTEXT], source="mirrorhub", minutes=9)
    store.dedupe()
    assert block_hash(CONTEXT) in _learned(store, "mirrorhub")
    assert all(CONTEXT not in store.text(a)[0] for a in ids)


@pytest.mark.parametrize(("value", "message"), [
    ('"x"', "must be a list of strings"),
    ('["(unclosed"]', "invalid regex"),
    ('[""]', "must not hold an empty string"),
])
def test_keep_blocks_errors_name_the_file_and_key(value: str, message: str) -> None:
    toml = ('[[sources]]\nname = "a"\npublisher = "A"\nkind = "original"\n'
            f'domains = ["a.example"]\nkeep_blocks = {value}\n')
    with pytest.raises(ConfigError, match=message) as err:
        parse_registry(toml.encode(), "my-sources.toml")
    assert "my-sources.toml" in str(err.value) and "keep_blocks" in str(err.value)
