"""The Reason enum: the labels stored in failures.reason, and which of them a retry can help."""

from __future__ import annotations

from pathlib import Path

from newsflow.reasons import Reason, http_status, is_reason, is_transient
from newsflow.types import Failure
from storage import writes
from storage.db import reader, writer


def test_http_labels_keep_their_stored_spelling() -> None:
    assert Reason.http(404) == "http_404" and http_status("http_404") == 404
    assert [is_transient(Reason.http(s)) for s in (404, 403, 410, 408, 429, 500, 503)] == [
        False, False, False, True, True, True, True]
    assert http_status("timeout") is None and http_status("http_4040") is None


def test_transient_and_known_labels() -> None:
    assert Reason.READ_TIMEOUT.transient and is_transient("read_timeout")
    assert not Reason.ROBOTS_DISALLOWED.transient and not is_transient("robots_disallowed")
    assert is_reason("xml_bomb") and is_reason("http_999")
    assert not is_reason("robots") and not is_reason("http_NNN") and not is_transient("robots")


def test_a_reason_is_stored_as_its_plain_label(tmp_path: Path) -> None:
    db = tmp_path / "n.duckdb"
    with writer(db) as con:
        writes.record_failures(con, [
            Failure(url="https://kxan.com/a", source="kxan", stage="fetch",
                    reason=Reason.READ_TIMEOUT, transient=True),
            Failure(url="https://kxan.com/b", source="kxan", stage="fetch", reason=Reason.http(410))])
    with reader(db) as con:
        rows = con.execute("SELECT reason, typeof(reason) FROM failures ORDER BY url").fetchall()
    assert rows == [("read_timeout", "VARCHAR"), ("http_410", "VARCHAR")]
