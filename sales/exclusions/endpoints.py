"""HTTP: exclusion files. The body is read as a stream and each piece handed to the ingest in
a worker thread as it arrives: the raw file is never held whole, nor written anywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Query, Request, Response, status
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from kit import clock
from kit import http_errors as errors
from sales.accounts.deps import IdPath, PrincipalDep, SessionDep
from sales.exclusions import service
from sales.exclusions.exceptions import ExclusionFileMediaType, ExclusionFileUnreadable
from sales.exclusions.ingest import Ingest
from sales.exclusions.schemas import ExclusionFileList, ExclusionFileOut, ExclusionSalt, Form
from segmentation.models import ExclusionFile

if TYPE_CHECKING:  # a typing-only name of the library
    from python_multipart.multipart import MultipartCallbacks

router = APIRouter(tags=["exclusions"])

Name = Annotated[str, Query(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f]+$")]
Region = Annotated[
    str, Query(pattern=r"^[A-Z]{2}$", description="how national numbers are read (FR, RE...)")
]
FormQuery = Annotated[
    Form, Query(description="numbers, or sha256: hashed by you (GET /v1/exclusion-files/salt)")
]
BODY = {
    "requestBody": {
        "required": True,
        "description": "One number (or hash) per line, or a CSV whose first column holds them; "
        "as the body itself (text/plain, text/csv or application/octet-stream) or a "
        "multipart/form-data file. Up to 5,000,000 lines.",
        "content": {
            # text/plain and text/csv are taken too; only these two are documented, the
            # ones client generators know (openapi-python-client refuses the others).
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}
UPLOAD_ERRORS = errors.responses(
    413, 415, not_found="an exclusion file of another organisation, or none"
)


class _Parts:
    """The file parts of a multipart body, as a stream (python-multipart's push parser)."""

    def __init__(self, boundary: bytes) -> None:
        self.out: list[bytes] = []
        self._field, self._value, self._take = b"", b"", False
        self._headers: dict[bytes, bytes] = {}
        callbacks: MultipartCallbacks = {  # noqa: F821 (typing only)
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add("_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": lambda: self._data(b"\n", 0, 1),
        }
        self.parser = MultipartParser(boundary, callbacks)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._take:
            self.out.append(data[start:end])

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _begin(self) -> None:
        self._headers, self._take = {}, False

    def _header(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        self._take = b"filename=" in disposition or b'name="file"' in disposition

    def write(self, data: bytes) -> bytes:
        try:
            self.parser.write(data)
        except FormParserError as exc:
            raise ExclusionFileUnreadable(
                "the multipart body is malformed: send the file as a form field named 'file'"
            ) from exc
        out, self.out = b"".join(self.out), []
        return out


async def _read(request: Request, ingest: Ingest, session: Any, row: ExclusionFile) -> None:
    """Feed the body to the ingest and store its chunks, piece by piece."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    parts = None
    if kind == b"multipart/form-data":
        if b"boundary" not in options:
            raise ExclusionFileUnreadable(
                "a multipart body needs its boundary: let the client set it"
            )
        parts = _Parts(options[b"boundary"])
    elif kind not in (b"text/plain", b"text/csv", b"application/octet-stream"):
        raise ExclusionFileMediaType(
            "send the file as text/plain, text/csv or a multipart/form-data file"
        )

    chunks = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await chunks.__anext__()
        except StopAsyncIteration:
            return None

    def consume() -> None:
        # One thread does all the work, pulling the body from the event loop: pieces handed
        # to whichever pool thread is free would spread their allocations over many malloc
        # arenas (5 million lines: +317 MB at peak that way, +92 MB in one thread with the
        # distinct count sorted in place; bench/exclusions.py).
        while (data := anyio.from_thread.run(next_chunk)) is not None:
            if data:
                service.store(session, row, ingest.feed(parts.write(data) if parts else data))
        service.store(session, row, ingest.close())

    await run_in_threadpool(consume)


@router.post(
    "/exclusion-files",
    status_code=status.HTTP_201_CREATED,
    summary="Upload an exclusion file: its numbers are left out of the criteria that name it",
    openapi_extra=BODY,
    responses=UPLOAD_ERRORS,
)
async def create_exclusion_file(
    request: Request,
    who: PrincipalDep,
    session: SessionDep,
    name: Name = "exclusions",
    form: FormQuery = "numbers",
    region: Region = "FR",
) -> ExclusionFileOut:
    row = await run_in_threadpool(service.begin, session, who, name, form, clock.now())
    ingest = service.start(form, region)
    await _read(request, ingest, session, row)
    return await run_in_threadpool(service.finish, session, row, ingest, clock.now())


@router.put(
    "/exclusion-files/{file_id}",
    summary="Replace an exclusion file's numbers (same id: criteria naming it follow)",
    openapi_extra=BODY,
    responses={**UPLOAD_ERRORS, **errors.responses(404)},
)
async def replace_exclusion_file(
    file_id: IdPath,
    request: Request,
    who: PrincipalDep,
    session: SessionDep,
    name: Annotated[str | None, Query(min_length=1, max_length=120)] = None,
    form: FormQuery = "numbers",
    region: Region = "FR",
) -> ExclusionFileOut:
    now = clock.now()
    row = await run_in_threadpool(service.replacing, session, who, file_id, name, form, now)
    ingest = service.start(form, region)
    await _read(request, ingest, session, row)
    return await run_in_threadpool(service.finish, session, row, ingest, now)


@router.get("/exclusion-files", summary="Your organisation's exclusion files")
def list_exclusion_files(who: PrincipalDep, session: SessionDep) -> ExclusionFileList:
    return ExclusionFileList(items=service.list_files(session, who))


@router.get("/exclusion-files/salt", summary="The salt to hash your numbers with (sha256 form)")
def get_exclusion_salt(who: PrincipalDep) -> ExclusionSalt:
    return service.salt(who)


@router.get("/exclusion-files/{file_id}", responses=errors.responses(404))
def get_exclusion_file(file_id: IdPath, who: PrincipalDep, session: SessionDep) -> ExclusionFileOut:
    return service.view(service.get_file(session, who, file_id))


@router.delete(
    "/exclusion-files/{file_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors.responses(404, 409, conflict="an order not yet sent uses the file"),
)
def delete_exclusion_file(file_id: IdPath, who: PrincipalDep, session: SessionDep) -> Response:
    service.delete(session, who, file_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
