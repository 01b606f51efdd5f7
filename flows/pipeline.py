"""One bounded submit-and-collect loop for the flows that feed batches to the extraction pool."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R_co = TypeVar("R_co", covariant=True)


class Pending(Protocol[R_co]):
    """What a submit returns: a Prefect future, or a concurrent.futures one."""

    def result(self) -> R_co: ...


def pipelined(items: Iterable[T], submit: Callable[[T], Pending[Any]], ahead: int
              ) -> Iterator[tuple[T, Any]]:
    """Submit every item and yield (item, result) in submission order.

    At most `ahead` submitted items wait beyond the one being handed back, so the caller's work
    on a result (storing it) overlaps the next extraction while memory stays bounded on inputs
    of any size. Items are drawn lazily: the producer (a WARC reader, a fetcher) runs only as
    far ahead as the bound allows.
    """
    if ahead < 0:
        raise ValueError(f"ahead must be 0 or more, not {ahead}")
    in_flight: deque[tuple[T, Pending[Any]]] = deque()
    for item in items:
        in_flight.append((item, submit(item)))
        while len(in_flight) > ahead:
            done, future = in_flight.popleft()
            yield done, future.result()
    while in_flight:
        done, future = in_flight.popleft()
        yield done, future.result()
