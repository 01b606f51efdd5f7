"""The dedupe evaluation set: scorer arithmetic on a hand-made case, generator invariants."""

from __future__ import annotations

import json
import os
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bench.dedupe_eval import score as sc

# Truth: story A = a1 (original), a2, a3; story B = b1 (original), b2; digest d1; short s1.
TRUTH: list[sc.Member] = [
    ("https://a.com/1", "A", "original"), ("https://x.com/a2", "A", "member"),
    ("https://y.com/a3", "A", "member"),
    ("https://b.com/1", "B", "original"), ("https://x.com/b2", "B", "member"),
    ("https://x.com/digest", "D", "original"), ("https://x.com/short", "S", "original"),
]
# Prediction: P1 = a1 (elected), a2, b2 (a false merge); b1 alone; digest+short merged under the
# digest; a3 was never stored (it counts as a story of its own).
PRED: list[sc.Member] = [
    ("https://a.com/1", "P1", "original"), ("https://x.com/a2", "P1", "member"),
    ("https://x.com/b2", "P1", "member"),
    ("https://b.com/1", "P3", "original"),
    ("https://x.com/digest", "P4", "original"), ("https://x.com/short", "P4", "member"),
]


def test_pairwise_on_hand_made_case() -> None:
    s = sc.pairwise(TRUTH, PRED)
    # true pairs: A has 3, B has 1. Predicted pairs among labelled URLs: P1 3, P4 1.
    # Correct: only (a1, a2).
    assert (s.true_pairs, s.predicted_pairs, s.correct_pairs) == (4, 4, 1)
    assert s.precision == pytest.approx(0.25)
    assert s.recall == pytest.approx(0.25)


def test_originals_on_hand_made_case() -> None:
    o = sc.originals(TRUTH, PRED)
    # A: P1 holds 2 of its 3 and elects a1 -> right. B: b1 and b2 split 1/1, the tie goes to b1's
    # singleton, which holds only one member -> wrong. D is still its own original -> right.
    # S was demoted to a member of the digest's story -> wrong.
    assert (o.multi_correct, o.multi_total) == (1, 2)
    assert (o.all_correct, o.all_total) == (2, 4)
    assert o.wrong == ["https://b.com/1", "https://x.com/short"]


def test_trap_merges_on_hand_made_case() -> None:
    traps = {"https://x.com/digest", "https://x.com/short"}
    assert sc.trap_false_merges(TRUTH, PRED, traps) == sorted(traps)
    alone = [m for m in PRED if m[0] != "https://x.com/short"]
    assert sc.trap_false_merges(TRUTH, alone, traps) == []


def test_perfect_and_empty_predictions() -> None:
    s = sc.pairwise(TRUTH, TRUTH)
    assert (s.precision, s.recall) == (1.0, 1.0)
    o = sc.originals(TRUTH, TRUTH)
    assert (o.multi_accuracy, o.all_accuracy) == (1.0, 1.0)
    nothing = sc.pairwise(TRUTH, [])
    assert (nothing.predicted_pairs, nothing.precision, nothing.recall) == (0, 1.0, 0.0)
    # Without merges every labelled original is elected, but no multi-member story is formed.
    o = sc.originals(TRUTH, [])
    assert (o.multi_correct, o.all_correct) == (0, 2)


def test_residue_ignores_case_and_whitespace() -> None:
    sentences = ["Denial of responsibility!", "We will take necessary action within 24 hours."]
    texts = [("u1", "Story text.\nDENIAL   of\nresponsibility! more"),
             ("u2", "Story text. we will take necessary action within 24  hours."),
             ("u3", "Story text only, responsibility is denied.")]
    assert sc.residue(texts, sentences) == ["u1", "u2"]
    lines = sc.boilerplate_lines([("u1", "a\nADVERTISEMENT\nb"), ("u2", "no advertisement here")],
                                 ["ADVERTISEMENT"])
    assert lines == ["u1"]


def test_labels_fold_utm_variant_into_original() -> None:
    labels = {"pages": [
        {"url": "https://a.com/1", "story": "A", "is_original": True},
        {"url": "https://a.com/1?utm_source=x&utm_medium=y", "story": "A", "is_original": False},
        {"url": "https://a.com/amp/1", "story": "A", "is_original": False},
    ]}
    assert sc.truth_members(labels) == [("https://a.com/1", "A", "original"),
                                        ("https://a.com/amp/1", "A", "member")]
    labels["pages"][1]["story"] = "B"
    with pytest.raises(ValueError, match="two stories"):
        sc.truth_members(labels)


def _labels() -> dict[str, Any]:
    kinds = {"https://a.com/1": "original", "https://x.com/a2": "aggregator",
             "https://y.com/a3": "syndicator", "https://b.com/1": "original",
             "https://x.com/b2": "aggregator", "https://x.com/digest": "digest",
             "https://x.com/short": "short"}
    return {"seed": 0, "disclaimer_sentences": ["Denial of responsibility!"],
            "boilerplate_lines": ["ADVERTISEMENT"],
            "pages": [{"url": u, "story": s, "is_original": r == "original", "kind": kinds[u],
                       "template": "t", "has_disclaimer": u.startswith("https://x.com")}
                      for u, s, r in TRUTH]}


def _write_db(path: Path, members: list[sc.Member], texts: dict[str, str]) -> None:
    """The three relations score.py reads, as plain tables of a real DuckDB file."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE articles (article_id TEXT, url TEXT, source_kind TEXT, text TEXT)")
    con.execute("CREATE TABLE story_members (story_id TEXT, article_id TEXT, url TEXT, "
                "source TEXT, role TEXT, similarity DOUBLE, match_method TEXT)")
    con.execute("CREATE TABLE stories (story_id TEXT, original_article_id TEXT, "
                "original_url TEXT, original_source TEXT, title TEXT, member_count INT, "
                "first_seen_at TIMESTAMP)")
    for url, text in texts.items():
        con.execute("INSERT INTO articles VALUES (?, ?, 'aggregator', ?)", [url[-6:], url, text])
    for url, story, role in members:
        con.execute("INSERT INTO story_members VALUES (?, ?, ?, 's', ?, 1.0, 'test')",
                    [story, url[-6:], url, role])
        if role == "original":
            con.execute("INSERT INTO stories VALUES (?, ?, ?, 's', 't', 1, NULL)",
                        [story, url[-6:], url])
    con.close()


def test_score_cli_reads_duckdb_and_checks_targets(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    labels_file = tmp_path / "labels.json"
    labels_file.write_text(json.dumps(_labels()))
    clean = {u: "story text" for u, _, _ in TRUTH}
    good, bad = tmp_path / "good.duckdb", tmp_path / "bad.duckdb"
    _write_db(good, TRUTH, clean)
    _write_db(bad, [m for m in PRED if m[0] in clean], {**clean, "https://x.com/a2":
                                                       "text\ndenial OF responsibility!"})
    out = tmp_path / "report.json"
    assert sc.main(["--labels", str(labels_file), "--db", str(good), "--check",
                    "--json", str(out)]) == 0
    assert json.loads(out.read_text())["missed"] == []
    assert sc.main(["--labels", str(labels_file), "--db", str(bad), "--check",
                    "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["precision"] == pytest.approx(0.25)
    assert report["trap_false_merges"] == 2
    assert report["disclaimer_left"] == 1 and report["disclaimer_pages"] == 4
    assert "TARGET MISSED" in capsys.readouterr().out


# --- generator (needs the shared corpus; scripts may read it, product code never does) ---------

SHARED = Path(os.environ.get("NEWSFLOW_SHARED", Path(__file__).resolve().parents[2] / ".." /
                             "shared"))


@pytest.fixture(scope="module")
def evalset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"no shared corpus at {SHARED}")
    from bench.dedupe_eval import generate

    out = tmp_path_factory.mktemp("eval")
    gen, pages = generate.write_set(out, seed=7, originals=20)
    return out, (gen, pages)


def test_generator_labels_are_consistent(evalset: tuple[Path, Any]) -> None:
    out, _ = evalset
    labels = json.loads((out / "labels.json").read_text())
    originals = Counter(p["story"] for p in labels["pages"] if p["is_original"])
    stories = {p["story"] for p in labels["pages"]}
    assert set(originals) == stories and set(originals.values()) == {1}
    kinds = Counter(p["kind"] for p in labels["pages"])
    assert kinds["original"] == 20 and kinds["short"] >= 6 and 3 <= kinds["digest"] <= 5
    assert kinds["syndicator"] and kinds["aggregator"] and kinds["unknown"]
    variants = [p for p in labels["pages"] if p["kind"] == "variant"]
    assert {p["template"] for p in variants} == {"utm", "amp"}
    for p in variants:  # utm_* is stripped by normalize_url, the /amp/ path is not
        assert p["same_normalized_url"] == (p["template"] == "utm")
    assert labels["disclaimer_sentences"]
    assert sc.truth_members(labels)  # no URL in two stories


def test_generator_warc_matches_labels_and_crawl_order(evalset: tuple[Path, Any]) -> None:
    from tasks.warc import iter_warc

    out, _ = evalset
    labels = json.loads((out / "labels.json").read_text())
    records = list(iter_warc(out / "eval.warc.gz"))
    assert [r.url for r in records] == [p["url"] for p in labels["pages"]]
    times = [r.fetched_at for r in records]
    assert times == sorted(times)
    position = {p["url"]: i for i, p in enumerate(labels["pages"])}
    original = {p["story"]: p["url"] for p in labels["pages"] if p["is_original"]}
    early = [p for p in labels["pages"] if p.get("fetched_before_original")]
    assert early, "trap (d) needs copies fetched before their original"
    assert all(position[p["url"]] < position[original[p["story"]]] for p in early)


def test_generator_registry_leaves_one_aggregator_out(evalset: tuple[Path, Any]) -> None:
    out, _ = evalset
    labels = json.loads((out / "labels.json").read_text())
    sources = tomllib.loads((out / "sources.toml").read_text())["sources"]
    domains = {d: s["kind"] for s in sources for d in s["domains"]}
    assert labels["unlisted_host"] not in domains
    for p in labels["pages"]:
        host = p["host"].removeprefix("www.")
        if p["kind"] in ("syndicator", "aggregator", "original"):
            assert domains[host] == p["kind"]
    try:
        from newsflow.config import parse_registry
    except ImportError:
        return
    parse_registry((out / "sources.toml").read_bytes(), str(out / "sources.toml"))


def test_generator_traps_and_extractability(evalset: tuple[Path, Any]) -> None:
    from bench.dedupe_eval import generate

    _, (gen, pages) = evalset
    shorts = [g for g in pages if g.kind == "short"]
    assert {g.info["disclaimer_words"] for g in shorts} == {shorts[0].info["disclaimer_words"]}
    assert all(60 <= int(g.info["words"]) <= 150 < int(g.info["disclaimer_words"]) for g in shorts)
    assert len({g.source_host for g in shorts}) == 1
    for g in pages:
        if g.kind == "digest":
            assert 3 <= len(g.info["quotes"]) <= 5
    # Every generated template keeps its article body through trafilatura.
    report, problems = generate.verify(pages, gen.stories)
    assert problems == [], report


def test_generator_is_deterministic(evalset: tuple[Path, Any], tmp_path: Path) -> None:
    from bench.dedupe_eval import generate

    out, _ = evalset
    generate.write_set(tmp_path, seed=7, originals=20)
    assert (tmp_path / "labels.json").read_text() == (out / "labels.json").read_text()
    assert (tmp_path / "sources.toml").read_text() == (out / "sources.toml").read_text()
