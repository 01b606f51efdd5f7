"""Read WARC response records as RawPages (backfills, demo, tests) and write small WARCs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

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


def iter_warc(path: str | Path, progress: Callable[[int], None] | None = None
              ) -> Iterator[WarcResponse]:
    """Stream the response records of a (gzipped or plain) WARC file, one at a time.

    progress, if given, is called with the bytes of the file read since its last call: a
    progress bar by bytes needs no second pass over the file to count its records.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(str(p), "no such WARC file")
    name = str(p.resolve())
    with p.open("rb") as fh:
        done = 0
        try:
            records = ArchiveIterator(fh)
            for rec in records:
                if progress is not None and (pos := fh.tell()) > done:
                    progress(pos - done)
                    done = pos
                if rec.rec_type == "response":
                    page = _response(rec, name)
                    page.offset = records.get_record_offset()  # after the body: it reads to the end
                    yield page
        except Exception as exc:  # warcio raises bare exceptions on truncated or non-WARC input
            if isinstance(exc, InputFileError):
                raise
            raise InputFileError(str(p), f"not a readable WARC file ({exc})") from exc
        if progress is not None and p.stat().st_size > done:
            progress(p.stat().st_size - done)


def _response(rec: ArcWarcRecord, warc_file: str, offset: int | None = None) -> WarcResponse:
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
        return _response(rec, str(p), offset)


def write_warc(path: str | Path, records: Iterable[WarcResponse]) -> int:
    """Write response records to a gzipped WARC; returns how many were written."""
    n = 0
    with Path(path).open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for r in records:
            headers = list(r.headers) or [("Content-Type", r.content_type or "text/html")]
            if not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", r.content_type or "text/html"))
            http = StatusAndHeaders(f"{r.status} OK", headers, protocol="HTTP/1.1")
            date = r.fetched_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            rec = writer.create_warc_record(
                r.url,
                "response",
                payload=BytesIO(r.body),
                http_headers=http,
                warc_headers_dict={"WARC-Date": date},
            )
            writer.write_record(rec)
            n += 1
    return n
