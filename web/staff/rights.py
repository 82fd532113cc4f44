"""The staff's answer to a rights request, from the work queue: the service function
`POST /v1/rights/requests/{id}/answer` calls, in one transaction; the request is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.routing import APIRouter
from starlette.responses import RedirectResponse, Response

from kit import clock
from kit.db import unit_of_work
from kit.errors import RentalError
from subjects import service
from web.i18n import gettext as _
from web.security import field
from web.session import FormDep, check_csrf
from web.staff.access import QUEUE, Problem, StaffUserDep
from web.staff.queue import queue_page

router = APIRouter(include_in_schema=False)


@router.post(QUEUE + "/droits/{request_id}/reponse")
def answer(
    request: Request,
    who: StaffUserDep,
    fields: FormDep,
    request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    check_csrf(who, fields)
    text = field(fields, "answer").strip()[:2000]
    problem: str | None = None
    if not text:
        problem = _("Écrivez la réponse faite à la personne.")
    else:
        try:
            with unit_of_work() as session:
                service.answer(
                    session, request_id, f"user {who.principal.user_id}", text, clock.now()
                )
        except RentalError:
            problem = _("Cette demande est déjà close, ou n'existe pas : rechargez la file.")
    if problem is not None:
        where = Problem("droits", str(request_id), "reponse", {"answer": problem})
        return queue_page(request, who, where, 422)
    return RedirectResponse(f"{QUEUE}?fait=droits#droits", status_code=303)
