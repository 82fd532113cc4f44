"""HTTP: exclusion files. The body is read as a stream and each piece handed to the ingest in
a worker thread as it arrives: the raw file is never held whole, nor written anywhere."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from kit import clock
from kit import http_errors as errors
from sales.accounts.deps import IdPath, PrincipalDep, SessionDep
from sales.exclusions import service, stream
from sales.exclusions.ingest import Ingest
from sales.exclusions.schemas import ExclusionFileList, ExclusionFileOut, ExclusionSalt, Form
from segmentation.models import ExclusionFile

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


async def _read(request: Request, ingest: Ingest, session: Any, row: ExclusionFile) -> None:
    """Feed the body to the ingest and store its chunks, piece by piece, in one thread."""
    decode = stream.body(request.headers.get("content-type", "")).write
    pull = stream.puller(request)
    await run_in_threadpool(stream.consume, pull, decode, ingest, session, row)


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
