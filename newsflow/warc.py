"""One WARC response record: its type, and reading it back at the byte offset an import noted.

Shared by the WARC import (tasks.warc) and the raw-page reads (storage.reads), so that storage
never imports from tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord

from newsflow.errors import InputFileError


@dataclass(kw_only=True)
class WarcResponse:
    """One WARC response record: the page URL, fetch time, HTTP status, headers and body."""

    url: str
    fetched_at: datetime
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    warc_file: str | None = None  # the file and byte offset the record was read from
    offset: int | None = None
    rec_type: str = "response"  # or "revisit" (a capture of unchanged content: no new body)
    # Why the body is not whole ("" when it is): the file ends inside the record, or the
    # crawler marked it (WARC-Truncated: length, time, disconnect, unspecified).
    truncated: str = ""

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)


def parse_warc_date(value: str | None) -> datetime:
    """WARC-Date (ISO 8601, Z suffix) as an aware UTC datetime; now when missing or bad."""
    if value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def record_response(rec: ArcWarcRecord, warc_file: str, offset: int | None = None) -> WarcResponse:
    """A warcio response record as a WarcResponse."""
    http = rec.http_headers
    return WarcResponse(
        url=rec.rec_headers.get_header("WARC-Target-URI") or "",
        fetched_at=parse_warc_date(rec.rec_headers.get_header("WARC-Date")),
        status=int(http.get_statuscode() or 0) if http else 0,
        content_type=(http.get_header("Content-Type") if http else None) or "",
        body=rec.content_stream().read(),
        headers=tuple(http.headers) if http else (),
        warc_file=warc_file,
        offset=offset,
    )


def read_record(warc_file: str | Path, offset: int) -> WarcResponse:
    """The response record at a byte offset of a WARC (as iter_warc reported it)."""
    p = Path(warc_file)
    if not p.is_file():
        raise InputFileError(str(p), "no such WARC file (moved or deleted since the import?)")
    with p.open("rb") as fh:
        fh.seek(offset)
        try:
            rec = next(iter(ArchiveIterator(fh)))
        except Exception as exc:  # warcio raises bare exceptions on truncated or non-WARC input
            raise InputFileError(str(p), f"no readable WARC record at offset {offset} ({exc})") from exc
        if rec.rec_type != "response":
            raise InputFileError(str(p), f"the record at offset {offset} is a {rec.rec_type}, "
                                 "not a response: the file changed since the import")
        return record_response(rec, str(p), offset)
