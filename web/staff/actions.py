"""The forms of the account managers' pages. Each one calls the service function its API route
calls (rental/endpoints/orders.py), with the API's own schema for what is typed; a refusal
comes back as the page again, with the service's reason in the reader's language beside the
field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from kit.db import unit_of_work
from kit.errors import RentalError
from sales.accounts.schemas import Principal
from sales.accounts.signin import WebUser
from sales.orders import lifecycle, payments
from sales.orders.schemas import Cancellation, PaymentCreate, Reason
from segmentation import runtime
from web.i18n import N_, Words
from web.i18n import gettext as _
from web.security import Fields, field
from web.session import FormDep, PageRefused, check_csrf
from web.staff.access import QUEUE, Problem, StaffUserDep, order_page
from web.staff.order import order_view_page
from web.staff.queue import queue_page
from web.staff.words import cents_of, refusal

router = APIRouter(include_in_schema=False)
ORDER_PLACE = "commande"  # the order's own page; the others are the queue's sections
PLACES = {"acomptes", "contenus", "suspendues", "annulations", "envois", ORDER_PLACE}
TYPED = ("reference", "amount", "received_on", "reason", "refund")
REFUNDS = {"": None, "contrat": None, "oui": True, "non": False}
# Which field a refusal of the service is about ('' : the form as a whole).
FIELD_OF = {
    "overpayment": "amount",
    "invalid_payment_date": "received_on",
    "payment_reference_reused": "reference",
}


class FormInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("form invalid")
        self.errors = errors


def _iso_day(text: str) -> str | None:
    """'2027-01-12' as the date field sends it, or '12/01/2027' typed by hand."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%d/%m/%Y").date().isoformat()
    except ValueError:
        return text


PAYMENT_WORDS = Words(
    {
        "reference": N_(
            "Saisissez la référence du virement donnée par la banque : lettres, chiffres "
            "et . / : # - _ seulement, sans espace, 80 caractères au plus."
        ),
        "amount": N_(
            "Saisissez le montant reçu, TVA comprise, en euros avec au plus deux décimales "
            "(par exemple 1 234,56)."
        ),
        "received_on": N_(
            "Saisissez la date de réception sous la forme jj/mm/aaaa, ou laissez le "
            "champ vide pour aujourd'hui."
        ),
    }
)


def _payment(fields: Fields) -> PaymentCreate:
    """The payment typed in the form, checked by the API's schema."""
    cents = cents_of(field(fields, "amount").strip())
    doc = {
        "reference": field(fields, "reference").strip(),
        "amount_cents": cents if cents is not None else 0,
        "received_on": _iso_day(field(fields, "received_on").strip()),
    }
    errors = {} if cents is not None else {"amount": PAYMENT_WORDS["amount"]}
    try:
        body = PaymentCreate.model_validate(doc)
    except ValidationError as exc:
        for e in exc.errors():
            name = {"amount_cents": "amount"}.get(str(e["loc"][0]), str(e["loc"][0]))
            errors.setdefault(name, PAYMENT_WORDS.get(name, str(e["msg"])))
    if errors:
        raise FormInvalid(errors)
    return body


def _reason(fields: Fields) -> str:
    try:
        return Reason.model_validate({"reason": field(fields, "reason").strip()}).reason
    except ValidationError:
        raise FormInvalid(
            {"reason": _("Saisissez un motif de 3 à 500 caractères : le client le lira.")}
        ) from None


def _cancellation(fields: Fields) -> Cancellation:
    refund = field(fields, "refund")
    reason = field(fields, "reason").strip()
    try:
        if refund not in REFUNDS:
            raise ValueError(refund)
        doc = {"reason": reason or None, "refund_deposit": REFUNDS[refund]}
        return Cancellation.model_validate(doc)
    except (ValueError, ValidationError):
        raise FormInvalid(
            {
                "reason": _(
                    "Le motif fait au plus 500 caractères ; choisissez ce que devient "
                    "l'acompte parmi les choix proposés."
                )
            }
        ) from None


Action = Callable[[Session, Principal, str, Fields], str]


def _pay(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    body = _payment(fields)
    recorded = payments.record_payment(
        session,
        who,
        order_id,
        body.reference,
        body.amount_cents,
        body.received_on,
        runtime.current(),
    )
    return "paiement" if recorded.created else "paiement-deja"


def _approve(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    lifecycle.approve(session, who, order_id)
    return "approuve"


def _reject(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    lifecycle.reject(session, who, order_id, _reason(fields))
    return "refuse"


def _hold(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    lifecycle.hold(session, who, order_id, _reason(fields))
    return "suspendu"


def _release(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    lifecycle.release_hold(session, who, order_id, runtime.current())
    return "reprise"


def _cancel(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    body = _cancellation(fields)
    lifecycle.cancel(session, who, order_id, body.reason, body.refund_deposit)
    return "annulee"


def _decline(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    lifecycle.decline_cancellation(session, who, order_id, _reason(fields))
    return "annulation-refusee"


def _dispatch(session: Session, who: Principal, order_id: str, fields: Fields) -> str:
    lifecycle.request_dispatch(session, who, order_id)
    return "envoi"


ACTIONS: dict[str, Action] = {
    "pay": _pay,
    "approve": _approve,
    "reject": _reject,
    "hold": _hold,
    "release": _release,
    "cancel": _cancel,
    "decline": _decline,
    "dispatch": _dispatch,
}


def _back(request: Request, who: WebUser, problem: Problem, status: int) -> Response:
    """The page the form was on, again, with what went wrong."""
    if problem.place == ORDER_PLACE:
        return order_view_page(request, who, problem.order_id, problem, status)
    return queue_page(request, who, problem, status)


@router.post(order_page("{order_id}") + "/{action}")
def act(
    request: Request, who: StaffUserDep, fields: FormDep, order_id: str, action: str
) -> Response:
    """One action on one order, in one transaction; then back to the page it came from."""
    check_csrf(who, fields)
    run = ACTIONS.get(action)
    if run is None:
        raise PageRefused(
            404, _("Action inconnue"), _("Revenez à la file de travail et recommencez.")
        )
    place = field(fields, "place")
    place = place if place in PLACES else ORDER_PLACE
    typed = {name: field(fields, name) for name in TYPED}
    try:
        with unit_of_work() as session:
            done = run(session, who.principal, order_id, fields)
    except FormInvalid as exc:
        return _back(request, who, Problem(place, order_id, action, exc.errors, typed), 422)
    except RentalError as exc:
        errors = {FIELD_OF.get(exc.code, ""): refusal(exc, action)}
        return _back(request, who, Problem(place, order_id, action, errors, typed), exc.status)
    if place == ORDER_PLACE:
        return RedirectResponse(f"{order_page(order_id)}?fait={done}", status_code=303)
    return RedirectResponse(f"{QUEUE}?fait={done}&commande={order_id}#{place}", status_code=303)
