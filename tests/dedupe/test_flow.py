"""The dedupe flow under a throwaway Prefect API, and the `newsflow stories` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.dedupe import dedupe, stories_markdown
from newsflow.errors import InputFileError
from tests.dedupe.conftest import Store, aggregator_copy


def _fill(store: Store, real_texts: dict[str, list[str]]) -> tuple[str, str]:
    story = real_texts["threatpost-android"]
    orig = store.add("https://threatpost.com/android-ransomware/146774/", story,
                     source="threatpost", title="Android ransomware spreads")
    copy = store.add("https://mirrorhub.example/android-ransomware/", aggregator_copy(story, drop=2),
                     source="mirrorhub", minutes=40)
    store.add("https://apnews.com/article/mexico", real_texts["apnews-mexico"], source="apnews")
    return orig, copy


@pytest.mark.usefixtures("prefect_api")
def test_flow_merges_then_does_nothing(store: Store, real_texts: dict[str, list[str]]) -> None:
    orig, copy = _fill(store, real_texts)
    first = dedupe(db=store.db)
    assert first["articles_processed"] == 3
    assert (first["new_stories"], first["copies_merged"]) == (2, 1)
    assert store.original_of(copy) == orig
    before = store.dump()
    second = dedupe(db=store.db)
    assert (second["articles_processed"], second["new_stories"], second["copies_merged"]) == (0, 0, 0)
    assert store.dump() == before
    report = stories_markdown(store.db)
    assert "Android ransomware spreads" in report and "mirrorhub.example" in report


@pytest.mark.usefixtures("prefect_api")
def test_flow_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(InputFileError):
        dedupe(db=str(tmp_path / "nope.duckdb"))


def test_stories_command_shows_original_and_copies(store: Store,
                                                   real_texts: dict[str, list[str]]) -> None:
    _fill(store, real_texts)
    store.dedupe()
    r = subprocess.run([sys.executable, "-m", "newsflow", "stories", "--db", store.db,
                        "--limit", "5"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "Android ransomware spreads" in r.stdout
    assert "original" in r.stdout and "copy" in r.stdout and "minhash" in r.stdout
    assert "mirrorhub" in r.stdout
