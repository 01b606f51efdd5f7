"""The benchmark metric of bench/extraction_f1.py on texts whose scores are known by hand."""

from __future__ import annotations

import pytest

from bench.extraction_f1 import aggregate, match, precision_of, recall_of, score, shingles

TRUTH = "one two three four five six seven eight"  # 8 tokens -> 5 shingles


def test_identical_texts_score_one() -> None:
    s = score("same", [(TRUTH, TRUTH)])
    assert (s.f1, s.precision, s.recall, s.accuracy) == (1.0, 1.0, 1.0, 1.0)


def test_disjoint_texts_score_zero() -> None:
    s = score("other", [(TRUTH, "alpha beta gamma delta epsilon")])
    assert (s.f1, s.precision, s.recall) == (0.0, 0.0, 0.0)


def test_prefix_copy_has_full_precision_and_partial_recall() -> None:
    # pred shingles: (one..four), (two..five); both true; 3 true shingles missed.
    tp, fp, fn = match(TRUTH, "one two three four five")
    assert (tp, fp, fn) == pytest.approx((2 / 5, 0.0, 3 / 5))
    assert precision_of(tp, fp, fn) == pytest.approx(1.0)
    assert recall_of(tp, fp, fn) == pytest.approx(2 / 5)


def test_extra_boilerplate_lowers_precision_only() -> None:
    # 10 tokens -> 7 shingles; the 5 true ones are all found, 2 start in the junk.
    tp, fp, fn = match(TRUTH, "Share this one two three four five six seven eight")
    assert precision_of(tp, fp, fn) == pytest.approx(5 / 7)
    assert recall_of(tp, fp, fn) == pytest.approx(1.0)


def test_tokens_ignore_punctuation_but_keep_case() -> None:
    assert match("Hello, world!", "Hello world") == (1.0, 0.0, 0.0)
    assert match("Hello world", "hello world") == (0.0, 0.5, 0.5)


def test_short_text_is_one_shingle_and_repeats_count() -> None:
    assert shingles("a b") == {("a", "b"): 1}
    assert shingles("") == {}
    # the same 4 tokens twice: a repeated shingle counts once per occurrence
    assert shingles("w x y z w x y z")[("w", "x", "y", "z")] == 2


def test_empty_prediction_lowers_recall_but_not_precision() -> None:
    pairs = [(TRUTH, TRUTH), (TRUTH, None)]
    s = score("half", pairs)
    assert s.precision == pytest.approx(1.0)  # averaged over the one non-empty prediction
    assert s.recall == pytest.approx(0.5)
    assert s.f1 == pytest.approx(2 * 1.0 * 0.5 / 1.5)  # harmonic mean of the averages
    assert s.empty == 1


def test_f1_is_harmonic_mean_of_averages_not_mean_of_page_f1() -> None:
    pages = [match(TRUTH, "one two three four five"), match(TRUTH, TRUTH)]
    f1, precision, recall = aggregate(pages)
    assert precision == pytest.approx(1.0)
    assert recall == pytest.approx((2 / 5 + 1.0) / 2)
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall))
    page_f1_mean = ((2 * 0.4 / 1.4) + 1.0) / 2
    assert f1 != pytest.approx(page_f1_mean)
