"""HTTP: the public rights routes (a person with their number) and the staff queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.security import APIKeyHeader

from kit import clock
from kit import http_errors as errors
from kit.clock import Instant
from kit.db import unit_of_work
from sales.accounts.deps import PUBLIC, SessionDep, StaffDep
from subjects import records, service
from subjects.exceptions import WrongCode
from subjects.models import RequestKind
from subjects.records import RentalLine
from subjects.schemas import (
    Access,
    CodeAsk,
    CodeAsked,
    CodeCheck,
    HumanRequest,
    Record,
    RequestOut,
    StaffAnswer,
    StaffRequest,
    WrittenRequest,
)

router = APIRouter(prefix="/rights", tags=["rights"])
# The person's own scheme in the document: the access a verified code gave (no API key).
_access = APIKeyHeader(
    name="X-Rights-Access",
    scheme_name="RightsAccess",
    description="The access `POST /v1/rights/codes/verify` answers, for 30 minutes",
    auto_error=False,
)
AccessHeader = Annotated[str | None, Depends(_access)]
RequestId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _holder(session: SessionDep, access: AccessHeader) -> bytes:
    return service.holder(session, (access or "")[:64], clock.now())


HolderDep = Annotated[bytes, Depends(_holder)]


@router.post(
    "/codes",
    status_code=202,
    openapi_extra=PUBLIC,
    summary="Ask a one-time code by SMS (the same answer for any number)",
    responses=errors.responses(429, 415),
)
def ask_code(body: CodeAsk, request: Request, session: SessionDep) -> CodeAsked:
    """A code goes by SMS to the number if it is in the base; the answer is the same either
    way, so it says nothing of who is in the base."""
    token, expires = service.ask_code(session, body.number, _address(request), clock.now())
    return CodeAsked(challenge=token, expires_at=expires, detail=service.ASKED)


@router.post(
    "/codes/verify",
    openapi_extra=PUBLIC,
    summary="Check the code; answers an access to the record",
    responses=errors.responses(415),
)
def verify_code(body: CodeCheck) -> Access:
    # Its own transaction, committed before a wrong code is refused: every attempt counts.
    with unit_of_work() as session:
        outcome = service.verify(session, body.challenge, body.code, clock.now())
    if outcome.access is None or outcome.until is None:
        raise WrongCode(
            f"wrong or expired code: {outcome.attempts_left} attempts left; "
            "after that, ask a new code",
            attempts_left=outcome.attempts_left,
        )
    return Access(access=outcome.access, expires_at=outcome.until)


@router.get(
    "/record",
    summary="What the broker holds about the number",
    responses=errors.responses(401),
)
def get_record(session: SessionDep, mac: HolderDep) -> Record:
    return service.record(session, mac, clock.now())


@router.post(
    "/objection",
    summary="Object: no more messages, final",
    responses=errors.responses(401),
)
def object_to_prospecting(session: SessionDep, mac: HolderDep) -> RequestOut:
    return service.request_out(service.object_to_prospecting(session, mac, clock.now()))


@router.post("/erasure", summary="Erase the record", responses=errors.responses(401))
def erase(session: SessionDep, mac: HolderDep) -> RequestOut:
    return service.request_out(service.erase(session, mac, clock.now()))


@router.post(
    "/requests",
    status_code=201,
    summary="A request for the broker's staff (rectification...)",
    responses=errors.responses(401, 415),
)
def ask_human(body: HumanRequest, session: SessionDep, mac: HolderDep) -> RequestOut:
    made = service.ask_human(session, mac, RequestKind(body.kind), body.message, clock.now())
    return service.request_out(made)


@router.get(
    "/requests",
    summary="The staff queue of rights requests, nearest deadline first",
    responses=errors.responses(401, 403),
)
def list_rights_requests(session: SessionDep, _: StaffDep) -> list[StaffRequest]:
    return service.queue(session, clock.now())


@router.post(
    "/requests/written",
    status_code=201,
    summary="Enter a request received by post",
    responses=errors.responses(401, 403, 415),
)
def add_written_request(body: WrittenRequest, session: SessionDep, who: StaffDep) -> StaffRequest:
    at = min(body.received_at or clock.now(), clock.now())  # never received in the future
    made = service.ask_human(
        session, None, RequestKind.written, body.message, at, actor=f"user {who.user_id}"
    )
    return service.staff_view(made, clock.now())


@router.post(
    "/requests/{request_id}/answer",
    summary="Close a request with its answer",
    responses=errors.responses(401, 403, 404, 415),
)
def answer_rights_request(
    request_id: RequestId, body: StaffAnswer, session: SessionDep, who: StaffDep
) -> StaffRequest:
    return service.answer(session, request_id, f"user {who.user_id}", body.answer, clock.now())


@router.get(
    "/rentals",
    summary="Every rental of a period, for the records of processing (no personal data)",
    responses=errors.responses(401, 403),
)
def list_rentals(
    start: Annotated[Instant, Query(description="from this send time (included)")],
    end: Annotated[Instant, Query(description="to this send time (excluded)")],
    session: SessionDep,
    _: StaffDep,
) -> list[RentalLine]:
    return records.rentals(session, start, end)
