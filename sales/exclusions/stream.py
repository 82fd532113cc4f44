"""Reading an exclusion file's body as a stream: the pieces of a raw body as they are, or the
file parts of a multipart body (python-multipart's push parser, nothing spooled), pulled from
the event loop by one worker thread that does all the work."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio.from_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.orm import Session
from starlette.requests import Request

from sales.exclusions import service
from sales.exclusions.exceptions import ExclusionFileMediaType, ExclusionFileUnreadable
from sales.exclusions.ingest import Ingest
from segmentation.models import ExclusionFile

if TYPE_CHECKING:  # a typing-only name of the library
    from python_multipart.multipart import MultipartCallbacks

RAW = (b"text/plain", b"text/csv", b"application/octet-stream")
FIELD_LIMIT = 4096  # bytes kept of a form field that is not the file (a name, a token)


class Parts:
    """The file parts of a multipart body, as a stream. The other fields (small) are kept in
    `fields`; `before_file` is called with them when the first file part starts (a page checks
    its form's token there: the browser sends the fields in the form's order)."""

    def __init__(
        self, boundary: bytes, before_file: Callable[[dict[str, str]], None] | None = None
    ) -> None:
        self.out: list[bytes] = []
        self.fields: dict[str, str] = {}
        self._before_file, self._name, self._small = before_file, "", b""
        self._field, self._value, self._take = b"", b"", False
        self._headers: dict[bytes, bytes] = {}
        callbacks: MultipartCallbacks = {  # noqa: F821 (typing only)
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add("_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }
        self.parser = MultipartParser(boundary, callbacks)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._take:
            self.out.append(data[start:end])
        elif self._name and len(self._small) < FIELD_LIMIT:
            self._small += data[start:end]

    def _end(self) -> None:
        if self._take:
            self.out.append(b"\n")
        elif self._name:
            self.fields[self._name] = self._small[:FIELD_LIMIT].decode("utf-8", "replace")

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _begin(self) -> None:
        self._headers, self._take, self._name, self._small = {}, False, "", b""

    def _header(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        self._take = b"filename=" in disposition or b'name="file"' in disposition
        _, options = parse_options_header(disposition)
        self._name = "" if self._take else options.get(b"name", b"").decode("utf-8", "replace")
        if self._take and self._before_file is not None:
            check, self._before_file = self._before_file, None
            check(self.fields)

    def write(self, data: bytes) -> bytes:
        try:
            self.parser.write(data)
        except FormParserError as exc:
            raise ExclusionFileUnreadable(
                "the multipart body is malformed: send the file as a form field named 'file'"
            ) from exc
        out, self.out = b"".join(self.out), []
        return out


class Raw:
    """A body that is the file itself."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def write(self, data: bytes) -> bytes:
        return data


def body(
    content_type: str, before_file: Callable[[dict[str, str]], None] | None = None
) -> Parts | Raw:
    """What turns pieces of the body into pieces of the file, by its content type."""
    kind, options = parse_options_header(content_type)
    if kind == b"multipart/form-data":
        if b"boundary" not in options:
            raise ExclusionFileUnreadable(
                "a multipart body needs its boundary: let the client set it"
            )
        return Parts(options[b"boundary"], before_file)
    if kind not in RAW:
        raise ExclusionFileMediaType(
            "send the file as text/plain, text/csv or a multipart/form-data file"
        )
    return Raw()


def puller(request: Request) -> Callable[[], bytes | None]:
    """The next piece of the request's body (None at its end), for a worker thread: it waits
    for the event loop to receive it."""
    chunks = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await chunks.__anext__()
        except StopAsyncIteration:
            return None

    return lambda: anyio.from_thread.run(next_chunk)


def consume(
    pull: Callable[[], bytes | None],
    decode: Callable[[bytes], bytes],
    ingest: Ingest,
    session: Session,
    row: ExclusionFile,
) -> None:
    """Read the whole body into the ingest, storing its chunks as they come. One thread does
    all of it: pieces handed to whichever pool thread is free would spread their allocations
    over many malloc arenas (5 million lines: +317 MB at peak that way, +92 MB in one thread
    with the distinct count sorted in place; bench/exclusions.py)."""
    while (data := pull()) is not None:
        if data:
            service.store(session, row, ingest.feed(decode(data)))
    service.store(session, row, ingest.close())
