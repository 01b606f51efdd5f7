"""robots.txt per origin, fetched once per Fetcher and parsed by protego.

Policy when robots.txt cannot be read (a deliberate choice, stricter readings exist):
- 2xx: parsed; Disallow rules and Crawl-delay for our user agent apply.
- 4xx (404, 403, ...): allow everything (RFC 9309 section 2.3.1.3; what Google does).
- 5xx, 429, timeouts, connection errors: allow everything too. RFC 9309 would assume "disallow
  all" here; we allow because a broken robots endpoint should not silently stop a source's
  ingestion, the per-source min_delay still keeps us polite, and the cache means we never
  retry robots.txt within one run. The outcome is logged so an operator can see it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

log = logging.getLogger(__name__)

MAX_ROBOTS_BYTES = 500 * 1024  # Google's limit: rules after it are ignored


@dataclass(kw_only=True, frozen=True)
class RobotsDownload:
    """What fetching one robots.txt produced: a status and body, or an error label."""

    status: int | None  # None when no HTTP response arrived
    body: bytes = b""
    error: str = ""  # the fetch failure reason when status is None


Downloader = Callable[[str, str], RobotsDownload]  # (robots.txt URL, source name)


@dataclass(kw_only=True, frozen=True)
class RobotsRules:
    """The parsed rules of one origin; parser None means allow everything."""

    origin: str
    parser: Protego | None
    outcome: str  # "parsed", "allow_all:http_404", "allow_all:timeout", ...

    def allowed(self, url: str, user_agent: str) -> bool:
        return self.parser is None or bool(self.parser.can_fetch(url, user_agent))

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(user_agent)
        return float(delay) if delay is not None else None


def origin_of(url: str) -> str:
    """scheme://host[:port] of url, lower-case: robots.txt is per origin."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def parse_rules(origin: str, download: RobotsDownload) -> RobotsRules:
    """Apply the policy in the module docstring to one download."""
    if download.status is None:
        return RobotsRules(origin=origin, parser=None, outcome=f"allow_all:{download.error}")
    if 200 <= download.status < 300:
        text = download.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        return RobotsRules(origin=origin, parser=Protego.parse(text), outcome="parsed")
    return RobotsRules(origin=origin, parser=None, outcome=f"allow_all:http_{download.status}")


class RobotsCache:
    """Thread-safe cache: each origin's robots.txt is downloaded at most once."""

    def __init__(self, user_agent: str, downloader: Downloader) -> None:
        self.user_agent = user_agent
        self._download = downloader
        self._rules: dict[str, RobotsRules] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def rules_for(self, url: str, source: str = "") -> RobotsRules:
        """The rules of url's origin, downloading robots.txt on first use (for source)."""
        origin = origin_of(url)
        with self._guard:
            if origin in self._rules:
                return self._rules[origin]
            lock = self._locks.setdefault(origin, threading.Lock())
        # One lock per origin: other hosts are not held up while this one downloads.
        with lock:
            if origin not in self._rules:
                rules = parse_rules(origin, self._download(origin + "/robots.txt", source))
                if rules.outcome != "parsed":
                    log.info("robots.txt of %s unavailable (%s): allowing all", origin,
                             rules.outcome)
                with self._guard:
                    self._rules[origin] = rules
            return self._rules[origin]

    def allowed(self, url: str, source: str = "") -> bool:
        return self.rules_for(url, source).allowed(url, self.user_agent)

    def crawl_delay(self, url: str, source: str = "") -> float | None:
        return self.rules_for(url, source).crawl_delay(self.user_agent)
