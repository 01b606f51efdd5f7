"""flows.pipeline.pipelined: order, the bound on work in flight, laziness and errors."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from flows.pipeline import pipelined


def test_results_come_back_in_submission_order_with_their_items() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        out = list(pipelined(range(20), lambda n: pool.submit(lambda: n * n), ahead=3))
    assert out == [(n, n * n) for n in range(20)]


@pytest.mark.parametrize("ahead", [0, 1, 2, 5])
def test_never_more_than_ahead_plus_one_batches_in_flight(ahead: int) -> None:
    submitted: list[int] = []
    handed_back: list[int] = []

    def submit(n: int) -> Future[int]:
        submitted.append(n)
        # Outstanding: submitted but not yet handed back to the caller.
        assert len(submitted) - len(handed_back) <= ahead + 1
        done: Future[int] = Future()
        done.set_result(n)
        return done

    for item, _ in pipelined(range(12), submit, ahead):
        handed_back.append(item)
        assert len(submitted) - len(handed_back) <= ahead
    assert handed_back == list(range(12))


def test_items_are_drawn_lazily() -> None:
    drawn: list[int] = []

    def produce() -> Iterator[int]:
        for n in range(100):
            drawn.append(n)
            yield n

    def submit(n: int) -> Future[int]:
        f: Future[int] = Future()
        f.set_result(n)
        return f

    gen = pipelined(produce(), submit, ahead=2)
    assert next(gen) == (0, 0)
    assert drawn == [0, 1, 2]  # the producer ran only as far as the bound asked


def test_a_failed_batch_raises_at_its_turn() -> None:
    def submit(n: int) -> Future[int]:
        f: Future[int] = Future()
        if n == 3:
            f.set_exception(RuntimeError("batch 3 failed"))
        else:
            f.set_result(n)
        return f

    seen = []
    with pytest.raises(RuntimeError, match="batch 3 failed"):
        for item, _ in pipelined(range(6), submit, ahead=1):
            seen.append(item)
    assert seen == [0, 1, 2]


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="ahead"):
        list(pipelined([1], lambda n: None, ahead=-1))  # type: ignore[arg-type,return-value]
