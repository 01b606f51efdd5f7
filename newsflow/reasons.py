"""Why a URL produced no article: the labels stored in failures.reason, and which a retry helps."""

from __future__ import annotations

import re
from enum import StrEnum

_HTTP = re.compile(r"http_(\d{3})")


class Reason(StrEnum):
    """A failure reason; its value is the label stored in DuckDB and shown by the CLI.

    HTTP statuses are labelled http_NNN (Reason.http), one label per status, not members.
    """

    CONNECT_ERROR = "connect_error"
    TIMEOUT = "timeout"
    READ_TIMEOUT = "read_timeout"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CONNECTION_RESET = "connection_reset"
    NETWORK_ERROR = "network_error"
    EMPTY_BODY = "empty_body"
    TLS_ERROR = "tls_error"
    BAD_URL = "bad_url"
    BAD_SCHEME = "bad_scheme"
    PRIVATE_ADDRESS = "private_address"
    UNRESOLVABLE = "unresolvable"
    ROBOTS_DISALLOWED = "robots_disallowed"
    REDIRECT_LOOP = "redirect_loop"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    TOO_LARGE = "too_large"
    DECODE_ERROR = "decode_error"
    NOT_HTML = "not_html"
    FETCH_ERROR = "fetch_error"
    INTERNAL_ERROR = "internal_error"
    XML_BOMB = "xml_bomb"
    NOT_XML = "not_xml"
    NOT_A_FEED = "not_a_feed"
    NOT_A_SITEMAP = "not_a_sitemap"
    NO_RESPONSE = "no_response"
    PARSE_ERROR = "parse_error"
    EXTRACT_ERROR = "extract_error"
    NO_TEXT = "no_text"
    WARC_TRUNCATED = "warc_truncated"

    @property
    def transient(self) -> bool:
        """Whether fetching the URL again later may succeed (the same bytes fail the same way)."""
        return self in _TRANSIENT

    @staticmethod
    def http(status: int) -> str:
        """The label of an HTTP status that ended a fetch: http_404, http_503, ..."""
        return f"http_{status}"


_TRANSIENT = frozenset({
    Reason.CONNECT_ERROR, Reason.TIMEOUT, Reason.READ_TIMEOUT, Reason.DEADLINE_EXCEEDED,
    Reason.CONNECTION_RESET, Reason.NETWORK_ERROR, Reason.EMPTY_BODY, Reason.WARC_TRUNCATED,
})
_LABELS = frozenset(Reason)


def http_status(reason: str) -> int | None:
    """The status of an http_NNN label, else None."""
    m = _HTTP.fullmatch(reason)
    return int(m[1]) if m else None


def http_transient(status: int) -> bool:
    """Whether a later request may get a better answer: server errors, 408 and 429."""
    return status >= 500 or status in (408, 429)


def is_reason(label: str) -> bool:
    """Whether label is a failure reason newsflow records (a member or an http_NNN label)."""
    return label in _LABELS or http_status(label) is not None


def is_transient(reason: str) -> bool:
    """Reason.transient for any recorded label, http_NNN ones included; False when unknown."""
    status = http_status(reason)
    if status is not None:
        return http_transient(status)
    return reason in _TRANSIENT
