"""Politeness per host: a concurrency limit, a delay between requests, and retry backoff."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

BACKOFF_CAP = 30.0
MAX_CRAWL_DELAY = 60.0  # a robots Crawl-delay above this is clamped, so one host cannot stall a run


def host_key(url: str) -> str:
    """Politeness is per host name (all ports of one machine count as one host)."""
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def request_delay(min_delay: float, crawl_delay: float | None) -> float:
    """Seconds between two requests to a host: the source's delay or robots' (clamped) if longer."""
    delay = min_delay
    if crawl_delay is not None:
        delay = max(delay, min(crawl_delay, MAX_CRAWL_DELAY))
    return max(0.0, delay)


def backoff_delay(attempts: int, backoff: float, rng: random.Random) -> float:
    """Seconds to wait before retry number `attempts`: exponential, capped, with jitter."""
    # Jitter keeps many workers from retrying in lock-step.
    return min(BACKOFF_CAP, backoff * 2 ** (attempts - 1)) * rng.uniform(0.5, 1.5)


@dataclass
class _HostGate:
    """Politeness state of one host: a concurrency limit and the earliest next request time."""

    sem: threading.BoundedSemaphore
    lock: threading.Lock
    next_at: float = 0.0


class HostGates:
    """The gates of every host one Fetcher talks to, shared by its threads."""

    def __init__(self) -> None:
        self._gates: dict[str, _HostGate] = {}
        self._lock = threading.Lock()

    def _gate(self, host: str, concurrency: int) -> _HostGate:
        with self._lock:
            gate = self._gates.get(host)
            if gate is None:
                gate = _HostGate(threading.BoundedSemaphore(max(1, concurrency)), threading.Lock())
                self._gates[host] = gate
            return gate

    @contextmanager
    def slot(self, url: str, concurrency: int, delay: float) -> Iterator[None]:
        """Hold one of the host's concurrency slots, starting no sooner than its next slot."""
        gate = self._gate(host_key(url), concurrency)
        with gate.sem:
            with gate.lock:
                now = time.monotonic()
                start = max(now, gate.next_at)
                gate.next_at = start + delay
            if start > now:
                time.sleep(start - now)
            yield

    def defer(self, url: str, seconds: float) -> None:
        """No request to url's host for the next `seconds` (a Retry-After)."""
        gate = self._gate(host_key(url), 1)
        with gate.lock:
            gate.next_at = max(gate.next_at, time.monotonic() + seconds)
