"""Read WARC response records as RawPages (backfills, demo, tests) and write small WARCs."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from newsflow.errors import InputFileError
from newsflow.warc import WarcResponse, record_response


def iter_warc(path: str | Path, progress: Callable[[int], None] | None = None
              ) -> Iterator[WarcResponse]:
    """Stream the response and revisit records of a (gzipped or plain) WARC file, one at a time.

    A record the file ends inside comes with `truncated` set (its URL when its headers were
    read, else ""), never as a whole page. progress, if given, is called with the bytes of
    the file read since its last call: a progress bar by bytes needs no second pass over the
    file to count its records.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(str(p), "no such WARC file")
    name = str(p.resolve())
    last = 0  # the offset of the last record read whole
    with p.open("rb") as fh:
        done = 0
        records = ArchiveIterator(fh)
        try:
            for rec in records:
                if progress is not None and (pos := fh.tell()) > done:
                    progress(pos - done)
                    done = pos
                # No Content-Length (which every WARC record has): its headers were cut short.
                headless = rec.rec_headers.get_header("Content-Length") is None
                if rec.rec_type not in ("response", "revisit") and not headless:
                    continue
                page = record_response(rec, name)
                page.offset = last = records.get_record_offset()  # after the body: read to the end
                page.rec_type = rec.rec_type or "response"
                if headless or getattr(rec.raw_stream, "limit", 0) > 0:  # bytes missing
                    page.truncated, page.body = "file ends inside the record", b""
                    yield page
                    return  # nothing can follow the end of the file
                elif marked := rec.rec_headers.get_header("WARC-Truncated"):
                    page.truncated = f"WARC-Truncated: {marked}"
                yield page
        except Exception as exc:  # warcio raises bare exceptions on truncated or non-WARC input
            if isinstance(exc, InputFileError):
                raise
            if not last and records.get_record_offset() == 0:
                raise InputFileError(str(p), f"not a readable WARC file ({exc})") from exc
            yield _cut_record(name, records.get_record_offset(), f"unreadable record ({exc})")
            return
        if progress is not None and p.stat().st_size > done:
            progress(p.stat().st_size - done)
    if name.endswith(".gz"):
        cut = _cut_gzip_member(p, last)
        if cut is not None:
            yield _cut_record(name, *cut)


def _cut_gzip_member(path: Path, start: int) -> tuple[int, str] | None:
    """(offset, detail) of a gzip member that the file ends inside, from start on; else None.

    warcio ends a gzipped WARC quietly at a member cut short, so the record in it would vanish
    without a trace. One member per record: only the tail after the last record is inflated.
    """
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read()
    pos = 0
    while pos < len(data):
        inflater = zlib.decompressobj(31)
        try:
            head = inflater.decompress(data[pos:], 4096)
        except zlib.error:
            return None  # not gzip members here (warcio read it, so not ours to judge)
        while not inflater.eof and inflater.unconsumed_tail:
            try:
                inflater.decompress(inflater.unconsumed_tail, 1 << 20)
            except zlib.error:
                break
        if not inflater.eof:
            return start + pos, _target(head) + "file ends inside the gzip member"
        pos = len(data) - len(inflater.unused_data)
    return None


def _target(head: bytes) -> str:
    """'URL ' of the WARC-Target-URI in a record's first bytes, for the cut record's detail."""
    m = re.search(rb"WARC-Target-URI: *<?([^\s>]+)", head)
    return m[1].decode("utf-8", "replace") + " " if m else ""


def _cut_record(warc_file: str, offset: int, detail: str) -> WarcResponse:
    """A record the file ends inside: its URL when its headers were read, never a body."""
    url, _, why = detail.partition(" ") if detail.startswith("http") else ("", "", detail)
    return WarcResponse(url=url, fetched_at=datetime.now(UTC), status=0, content_type="",
                        body=b"", warc_file=warc_file, offset=offset, truncated=why or detail)


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
