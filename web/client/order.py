"""An order as its marketer sees it (`GET /v1/orders/{id}` with the client's key): the
summary, the history, the send plan, the invoices, the report, and on a hold the choice
between the offered volume and cancelling, through the API's own service functions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from dispatch import waves
from kit import clock
from kit.db import unit_of_work
from kit.errors import RentalError
from sales.accounts.schemas import Principal
from sales.accounts.service import organisation_name
from sales.accounts.signin import WebUser
from sales.invoices import service as invoices
from sales.orders import access, lifecycle
from sales.orders import view as order_view
from sales.orders.schemas import Cancellation, OrderOut
from sales.orders.states import TRANSITIONS, OrderStatus
from web.client.paths import ORDERS, invoice_file, order_page, report_file
from web.i18n import N_, Words
from web.i18n import gettext as _
from web.security import Fields, field
from web.session import FormDep, PageRefused, WebUserDep, check_csrf
from web.staff import words
from web.staff.access import order_page as staff_order_page
from web.staff.words import refusal
from web.templating import render

router = APIRouter(include_in_schema=False)
S = OrderStatus
# The report exists once sending has started (reports/service.reportable_order).
REPORTED = {S.dispatching, S.sent, S.reported, S.closed}
REPORT_FORMATS = Words(
    {"html": N_("Page web"), "pdf": "PDF", "csv": N_("CSV (tableur)"), "json": "JSON"}
)
DONE = Words(
    {
        "volume": N_("Volume réduit accepté : la commande est repartie avec la quantité proposée."),
        "annulee": N_("Commande annulée."),
        "annulation-demandee": N_(
            "Demande d'annulation envoyée : un chargé de compte vous répondra."
        ),
    }
)
NOT_FOUND = N_(
    "Cette commande n'existe pas dans votre organisation. Retrouvez les vôtres dans la liste."
)


class FormInvalid(Exception):
    """What was typed cannot be sent to the service (the message says what to fix)."""


def choices(order: OrderOut) -> list[str]:
    """The forms the page offers (the services decide in the end)."""
    status = S(order.status)
    offered = []
    if status is S.on_hold and order.reservation == "short" and order.offered_quantity:
        offered.append("accept")
    if S.cancelled in TRANSITIONS[status] and not order.cancellation_requested:
        offered.append("cancel")
    return offered


def _context(session: Session, who: Principal, order_id: str) -> dict[str, Any]:
    found = access.get_order(session, who, order_id)
    order = order_view.view(session, found, who)
    name = organisation_name(session, found.organisation_id)
    documents = [
        invoices.view(session, i, name)
        for i in sorted(
            invoices.list_invoices(session, who, order_id=found.id),
            key=lambda i: (i.year, i.sequence),
        )
    ]
    plan = waves.for_order(session, found, clock.now())
    return {
        "order": order,
        "invoices": documents,
        "waves": plan,
        "waves_done": sum(1 for w in plan if w.status == "done"),
        "choices": choices(order),
        "report": S(order.status) in REPORTED,
    }


def order_view_page(
    request: Request, who: WebUser, order_id: str, error: str = "", status: int = 200
) -> Response:
    try:
        with unit_of_work() as session:
            context = _context(session, who.principal, order_id)
    except RentalError as exc:
        if exc.status != 404:
            raise
        raise PageRefused(404, _("Commande introuvable"), _(NOT_FOUND)) from None
    context.update(
        user=who,
        active="commandes",
        csrf=who.csrf_token,
        w=words,
        when=words.when,
        day=words.day,
        error=error,
        done=DONE.get(request.query_params.get("fait", ""), ""),
        orders=ORDERS,
        report_file=report_file,
        invoice_file=invoice_file,
        report_formats=list(REPORT_FORMATS.items()),
    )
    return render(request, "client_order.html", context, status)


@router.get(order_page("{order_id}"))
def client_order(request: Request, who: WebUserDep, order_id: str) -> Response:
    if who.principal.is_staff:  # the broker's view of an order is the account managers' page
        return RedirectResponse(staff_order_page(order_id), status_code=303)
    return order_view_page(request, who, order_id)


def _accept(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    lifecycle.accept_volume(session, who, order_id)
    return "volume"


def _cancel(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    reason = field(fields, "reason").strip() or None
    try:
        body = Cancellation.model_validate({"reason": reason})
    except ValidationError:
        raise FormInvalid(
            _(
                "Le motif est trop long ou contient des caractères refusés : 500 caractères au "
                "plus, en texte simple."
            )
        ) from None
    order = lifecycle.cancel(session, who, order_id, body.reason, None)
    return "annulation-demandee" if order.status is not S.cancelled else "annulee"


ACTIONS = {"accepter-volume": ("accept", _accept), "annuler": ("cancel", _cancel)}
LOCKED = N_(
    "Impossible d'accepter un volume réduit : aucun volume ne peut être proposé pour cette "
    "commande. Annulez-la : l'acompte vous sera remboursé."
)


@router.post(order_page("{order_id}") + "/{action}")
def act(request: Request, who: WebUserDep, fields: FormDep, order_id: str, action: str) -> Response:
    """Accept the offered volume, or cancel; then back to the order's page."""
    check_csrf(who, fields)
    if who.principal.is_staff:
        raise PageRefused(
            403,
            _("Action réservée au client"),
            _("Les chargés de compte agissent sur une commande depuis leur file de travail."),
        )
    if action not in ACTIONS:
        raise PageRefused(404, _("Action inconnue"), _("Revenez à la commande et recommencez."))
    name, run = ACTIONS[action]
    try:
        with unit_of_work() as session:
            done = run(session, who.principal, order_id, fields)
    except FormInvalid as exc:
        return order_view_page(request, who, order_id, str(exc), 422)
    except RentalError as exc:
        if exc.status == 404:
            raise PageRefused(404, _("Commande introuvable"), _(NOT_FOUND)) from None
        text = refusal(exc, name)
        if exc.code == "order_locked" and name == "accept":
            text = _(LOCKED)
        return order_view_page(request, who, order_id, text, exc.status)
    return RedirectResponse(f"{order_page(order_id)}?fait={done}", status_code=303)
