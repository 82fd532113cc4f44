"""An order as the broker's staff see it (`GET /v1/orders/{id}` with an account manager's key):
the exact counts beside the shown ones, its invoices, its history and its send plan, and the
actions its state allows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from dispatch import waves
from kit import clock
from kit.db import unit_of_work
from kit.errors import RentalError
from sales.accounts.schemas import Principal
from sales.accounts.signin import WebUser
from sales.invoices import service as invoices
from sales.orders import access
from sales.orders.lifecycle import REVISABLE
from sales.orders.schemas import OrderStaffOut
from sales.orders.states import TRANSITIONS, ContentStatus, OrderStatus
from sales.quotes import service as quotes
from sales.quotes.schemas import QuoteStaffOut
from web.i18n import gettext as _
from web.session import PageRefused
from web.staff.access import QUEUE, Problem, StaffUserDep, common, order_page
from web.staff.queue import DONE, card
from web.staff.words import refusal
from web.templating import render

router = APIRouter(include_in_schema=False)
S = OrderStatus


def actions(order: OrderStaffOut, due_cents: int) -> list[str]:
    """The forms the page offers, from the order's state (the services decide in the end)."""
    status = S(order.status)
    offered = []
    if due_cents > 0 and status is not S.cancelled:
        offered.append("pay")
    if status in (*REVISABLE, S.on_hold) and order.content_review.status != ContentStatus.approved:
        offered += ["approve", "reject"]
    if S.on_hold in TRANSITIONS[status] and status is not S.dispatching:
        offered.append("hold")
    if status is S.on_hold:
        offered.append("release")
    if order.cancellation_requested:
        offered.append("decline")
    if S.cancelled in TRANSITIONS[status]:
        offered.append("cancel")
    if S.dispatching in TRANSITIONS[status] and not any(
        e.action == "dispatch_requested" for e in order.events
    ):
        offered.append("dispatch")
    return offered


def _context(session: Session, who: Principal, order_id: str) -> dict[str, Any]:
    order = access.get_order(session, who, order_id)
    shown = card(session, who, order)
    quote = quotes.view(quotes.get_quote(session, who, order.quote_id), who)
    assert isinstance(quote, QuoteStaffOut)  # noqa: S101  (staff only reach this page)
    documents = [
        invoices.view(session, i, shown.order.organisation)
        for i in sorted(
            invoices.list_invoices(session, who, order_id=order.id),
            key=lambda i: (i.year, i.sequence),
        )
    ]
    return {
        "card": shown,
        "order": shown.order,
        "quote": quote,
        "invoices": documents,
        "waves": waves.for_order(session, order, clock.now()),
        "actions": actions(shown.order, shown.due_cents),
    }


def order_view_page(
    request: Request,
    who: WebUser,
    order_id: str,
    problem: Problem | None = None,
    status: int = 200,
) -> Response:
    try:
        with unit_of_work() as session:
            context = _context(session, who.principal, order_id)
    except RentalError as exc:
        if exc.status != 404:
            raise
        raise PageRefused(404, _("Commande introuvable"), refusal(exc, "")) from None
    context.update(common(who, "gestion"))
    context.update(
        problem=problem,
        errors=problem.summary() if problem else {},
        done=DONE.get(request.query_params.get("fait", ""), ""),
        queue=QUEUE,
    )
    return render(request, "staff_order.html", context, status)


@router.get(order_page("{order_id}"))
def staff_order(request: Request, who: StaffUserDep, order_id: str) -> Response:
    return order_view_page(request, who, order_id)
