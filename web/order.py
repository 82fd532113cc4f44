"""The order form: from a counted segment (the builder's quote) to a placed order.

The form page composes the message (web/order_views.py: sales/messages' own checks, fetched
again as the marketer types by web/static/order.js), the summary shows the order as
`lifecycle.check_order` prices it, and the confirmation places it through
`lifecycle.create_order`, the service of POST /v1/orders: the same checks, price and deposit
invoice.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.responses import RedirectResponse, Response

from kit import clock
from kit.db import unit_of_work
from kit.errors import RentalError
from kit.money import vat_cents
from kit.settings import get_settings
from sales.idempotency import service as idempotency
from sales.idempotency.exceptions import IdempotencyKeyReused, InvalidIdempotencyKey
from sales.idempotency.service import Answer, Attempt, Claim
from sales.invoices import terms
from sales.orders import access, lifecycle
from sales.orders.schemas import OrderCreate
from sales.quotes.models import Quote
from sales.quotes.repository import QuoteRepository
from web import order_views
from web.i18n import N_
from web.i18n import gettext as _
from web.security import CSRF_FIELD, Fields, field
from web.session import HOME, FormDep, PageRefused, WebUserDep, check_csrf
from web.staff.words import when
from web.templating import render

router = APIRouter(include_in_schema=False)
ORDER = "/app/commander"
LIVE = ORDER + "/apercu"
SUMMARY = ORDER + "/resume"
CONFIRM = ORDER + "/confirmer"
PLACED = ORDER + "/passee"
FIELDS = ("devis", "quantity", "message", "sender", "send_at")
# The summary's one-time key: a second POST of its confirmation (a double click, a reload, the
# back button) finds the order the first one placed, as an API retry with its Idempotency-Key.
KEY_FIELD = "idempotency_key"


def order_page(order_id: str) -> str:
    """The client's order page (web: another page module)."""
    return f"/app/commandes/{order_id}"


@dataclass
class Draft:
    """What the form holds, as typed."""

    quote_id: str
    quantity: str
    message: str
    sender: str
    send_at: str

    @classmethod
    def of(cls, fields: Fields) -> Draft:
        return cls(*(field(fields, name).replace("\r\n", "\n") for name in FIELDS))

    def hidden(self) -> dict[str, str]:
        return dict(
            zip(
                FIELDS,
                (self.quote_id, self.quantity, self.message, self.sender, self.send_at),
                strict=True,
            )
        )


NOT_FOUND = PageRefused(
    404,
    N_("Devis introuvable"),
    N_("Ce comptage n'existe pas dans votre organisation. Refaites votre ciblage pour commander."),
)


def _quote(who: WebUserDep, quote_id: str) -> Quote:
    """A quote of the person's organisation that can be ordered; a page saying why not."""
    with unit_of_work() as session:
        quote = QuoteRepository(session).get(quote_id, who.principal.scope())
        if quote is not None:
            session.expunge(quote)
    if quote is None:
        raise NOT_FOUND
    if quote.expires_at <= clock.now():
        raise PageRefused(
            409,
            _("Comptage expiré"),
            _(
                "Ce comptage a expiré le %(when)s. Refaites le comptage dans le ciblage, puis "
                "commandez."
            )
            % {"when": when(quote.expires_at)},
        )
    if quote.shown_count is None:
        raise PageRefused(
            409,
            _("Segment trop petit"),
            _("Ce ciblage réunit trop peu de personnes pour être commandé : élargissez-le."),
        )
    return quote


def earliest_send() -> str:
    """The earliest send time the picker offers (its `min`), on the service's clock (which a
    demo or a test may start elsewhere than the browser's): now, or now plus the contract's
    delay, in Paris time to the minute."""
    delay = get_settings().terms.min_send_delay_minutes
    at = clock.now().astimezone(clock.PARIS) + timedelta(minutes=delay)
    if delay:  # no leeway after a delay (the API allows none): the next whole minute
        at += timedelta(minutes=1)
    return f"{at:%Y-%m-%dT%H:%M}"


def _context(who: WebUserDep, quote: Quote, draft: Draft, **more: Any) -> dict[str, Any]:
    return {
        "earliest": earliest_send(),
        "user": who,
        "csrf": who.csrf_token,
        "csrf_field": CSRF_FIELD,
        "quote": quote,
        "draft": draft,
        "minimum": get_settings().privacy.min_segment_size,
        "builder": HOME,
        "composer": order_views.compose(quote, draft.message, draft.sender, draft.send_at),
        "urls": {"live": LIVE, "summary": SUMMARY, "confirm": CONFIRM, "form": ORDER},
        "problem": "",
        **more,
    }


@router.get(ORDER)
def order_form(request: Request, who: WebUserDep, devis: str = "") -> Response:
    """The form for the quote's segment: quantity, message, sender and send time."""
    quote = _quote(who, devis)
    draft = Draft(quote.id, str(quote.shown_count), "", "", "")
    return render(request, "order.html", _context(who, quote, draft))


@router.post(LIVE)
def composer(request: Request, who: WebUserDep, fields: FormDep) -> Response:
    """The composer's panel for what was typed (order.js asks it as the marketer types)."""
    check_csrf(who, fields)
    draft = Draft.of(fields)
    return render(request, "_composer.html", _context(who, _quote(who, draft.quote_id), draft))


def _body(draft: Draft) -> OrderCreate | str:
    """The API's own request body, or what is wrong with the form."""
    try:
        return OrderCreate(
            quote_id=draft.quote_id,
            quantity=int(draft.quantity),
            message=draft.message,
            sender=draft.sender,
            send_at=draft.send_at,
        )
    except (ValueError, ValidationError):
        return _("Vérifiez la quantité, l'expéditeur (3 à 11 lettres ou chiffres) et la date.")


def _refusal(exc: RentalError) -> str:
    return _("La commande n'est pas possible en l'état : %(detail)s") % {"detail": exc.detail}


def _prepared(
    request: Request, who: WebUserDep, fields: Fields
) -> tuple[Draft, Quote, OrderCreate] | Response:
    """The posted form (CSRF checked) as the API's request body, with its draft and quote; or
    the form again with what to fix."""
    check_csrf(who, fields)
    draft = Draft.of(fields)
    quote = _quote(who, draft.quote_id)
    body = _body(draft)
    if isinstance(body, str):
        return render(request, "order.html", _context(who, quote, draft, problem=body), 422)
    return draft, quote, body


@router.post(SUMMARY)
def summary(request: Request, who: WebUserDep, fields: FormDep) -> Response:
    """The order as it would be placed: quantity, price table, deposit; or the form again with
    what to fix."""
    prepared = _prepared(request, who, fields)
    if isinstance(prepared, Response):
        return prepared
    draft, quote, body = prepared
    try:
        with unit_of_work() as session:
            checked = lifecycle.check_order(session, who.principal, body, clock.now())
            session.rollback()  # a check: nothing is kept
    except RentalError as exc:
        context = _context(who, quote, draft, problem=_refusal(exc))
        return render(request, "order.html", context, exc.status)
    deposit = terms.deposit_cents(checked.total.total_excl_vat_cents)
    context = _context(
        who,
        quote,
        draft,
        checked=checked,
        deposit={"excl": deposit, "incl": deposit + vat_cents(deposit, checked.total.vat_rate)},
        send_at=order_views.paris(body.send_at),
    )
    context[KEY_FIELD] = secrets.token_urlsafe(24)
    return render(request, "order_summary.html", context)


def _in_progress() -> PageRefused:
    return PageRefused(
        409,
        _("Commande en cours"),
        _("Cette commande est en train d'être passée : retrouvez-la dans vos commandes."),
    )


def _attempt(who: WebUserDep, key: str, body: OrderCreate) -> Attempt:
    """The confirmation as the idempotency service knows requests: the organisation's own key
    space (as the API's), this route, the order asked for."""
    p = who.principal
    asked = body.model_dump_json().encode()
    return Attempt(
        scope=f"organisation:{p.organisation_id}:{p.role.value}",
        key_digest=idempotency.digest(key),
        route=f"POST {CONFIRM}",
        fingerprint=idempotency.fingerprint("POST", CONFIRM, "", asked),
    )


def _claim(attempt: Attempt) -> Claim | Answer | None:
    """The key claimed, or the answer of the confirmation that holds it (waited for, as the
    API waits); None when that one is still running after the wait."""
    deadline = time.monotonic() + get_settings().idempotency.wait_seconds
    while True:
        try:
            with unit_of_work() as session:
                outcome = idempotency.try_claim(session, attempt, clock.now())
        except IntegrityError:  # another click inserted the key first: look again
            outcome = None
        if isinstance(outcome, Claim | Answer):
            return outcome
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


@router.post(CONFIRM)
def confirm(request: Request, who: WebUserDep, fields: FormDep) -> Response:
    """Place the order through the API's service, once per summary, then go to its page."""
    prepared = _prepared(request, who, fields)
    if isinstance(prepared, Response):
        return prepared
    draft, quote, body = prepared
    try:
        key = field(fields, KEY_FIELD)
        idempotency.check_key(key)
        outcome = _claim(_attempt(who, key, body))
    except (InvalidIdempotencyKey, IdempotencyKeyReused):  # not this summary's confirmation
        return summary(request, who, fields)
    if isinstance(outcome, Answer):
        return RedirectResponse(outcome.body.decode(), status_code=303)
    if outcome is None:
        raise _in_progress()
    try:
        with unit_of_work() as session:
            order_id = lifecycle.create_order(session, who.principal, body).id
            placed_at = f"{PLACED}/{order_id}"
            # The answer with the order, in its transaction: both are kept, or neither.
            if not idempotency.complete(
                session, outcome, 303, None, placed_at.encode(), clock.now()
            ):
                raise _in_progress()  # a later click took the key over: it places the order
    except RentalError as exc:
        with unit_of_work() as session:
            idempotency.release(session, outcome)  # nothing placed: the same key may try again
        context = _context(who, quote, draft, problem=_refusal(exc))
        return render(request, "order.html", context, exc.status)
    return RedirectResponse(placed_at, status_code=303)


@router.get(PLACED + "/{order_id}")
def placed(request: Request, who: WebUserDep, order_id: str) -> Response:
    """A short confirmation, until the order page (web, /app/commandes/{id}) takes over."""
    try:
        with unit_of_work() as session:
            order = access.get_order(session, who.principal, order_id)
            seen = {"id": order.id, "quantity": order.quantity, "status": order.status.value}
    except RentalError as exc:
        raise PageRefused(
            404, _("Commande introuvable"), _("Cette commande n'existe pas.")
        ) from exc
    context = {"user": who, "order": seen, "order_url": order_page(order_id), "builder": HOME}
    return render(request, "order_placed.html", context)


@router.post(ORDER + "/modifier")
def edit(request: Request, who: WebUserDep, fields: FormDep) -> Response:
    """Back from the summary to the form, with what was typed."""
    check_csrf(who, fields)
    draft = Draft.of(fields)
    return render(request, "order.html", _context(who, _quote(who, draft.quote_id), draft))
