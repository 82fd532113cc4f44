"""The work queue: what waits for an account manager today, each with the form that does it.

The lists are the API's own (`GET /v1/orders` with its filters, the invoices past due), read
through the same services; the forms post to web/staff/actions.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from dispatch import waves
from dispatch.waves import Wave
from kit import clock
from kit.db import unit_of_work
from kit.text import is_id
from sales.accounts import service as accounts
from sales.accounts.schemas import Principal
from sales.accounts.signin import WebUser
from sales.invoices import service as invoices
from sales.invoices.models import OPEN, InvoiceKind
from sales.invoices.schemas import InvoiceOut
from sales.orders import access
from sales.orders import view as order_view
from sales.orders.lifecycle import REVISABLE
from sales.orders.models import Order
from sales.orders.schemas import OrderStaffOut
from sales.orders.states import OrderStatus
from subjects import service as subjects
from web.i18n import N_, Words
from web.i18n import gettext as _
from web.staff.access import QUEUE, Problem, StaffUserDep, common
from web.templating import render

router = APIRouter(include_in_schema=False)
LIMIT = 50  # per section; the API's lists page further
S = OrderStatus

# What an action that went through tells the account manager (the code travels in the URL).
DONE = Words(
    {
        "paiement": N_("Paiement enregistré."),
        "paiement-deja": N_(
            "Ce paiement était déjà enregistré (même référence, même montant) : rien n'a changé."
        ),
        "approuve": N_("Contenu approuvé."),
        "refuse": N_("Contenu refusé : le client voit le motif et peut modifier son message."),
        "suspendu": N_("Commande suspendue."),
        "reprise": N_("Commande remise en route."),
        "annulee": N_("Commande annulée."),
        "annulation-refusee": N_("Demande d'annulation refusée : la commande reste ferme."),
        "envoi": N_("Envoi immédiat demandé : les fenêtres légales d'envoi s'appliquent toujours."),
        "droits": N_("Réponse enregistrée : la demande est close."),
    }
)


@dataclass
class Card:
    """An order as a section of the queue shows it."""

    order: OrderStaffOut
    due_cents: int = 0  # what its oldest open invoice still awaits, VAT included
    due_invoice: str | None = None
    waves: list[Wave] = field(default_factory=list)


@dataclass
class Section:
    key: str
    title: str
    empty: str
    cards: list[Card] = field(default_factory=list)
    full: bool = False  # LIMIT reached: there may be more


def card(session: Session, who: Principal, order: Order) -> Card:
    view = order_view.view(session, order, who)
    assert isinstance(view, OrderStaffOut)  # noqa: S101  (staff only reach these pages)
    open_ = [
        i
        for i in invoices.list_invoices(session, who, order_id=order.id)
        if i.kind != InvoiceKind.credit_note and i.status in OPEN
    ]
    oldest = min(open_, key=lambda i: (i.year, i.sequence), default=None)
    if oldest is None:
        return Card(view)
    return Card(view, oldest.amount_incl_vat_cents - oldest.paid_cents, oldest.number)


def _section(
    session: Session, who: Principal, key: str, title: str, empty: str, orders: list[Order]
) -> Section:
    return Section(key, title, empty, [card(session, who, o) for o in orders], len(orders) >= LIMIT)


def _orders(session: Session, who: Principal) -> list[Section]:
    find = access.list_orders
    review = [
        o
        for o in find(session, who, content_status="pending", limit=LIMIT)
        if o.status in (*REVISABLE, S.on_hold)
    ]
    cancelling = [
        o
        for o in find(session, who, cancellation_requested=True, limit=LIMIT)
        if o.status is not S.cancelled
    ]
    sending = _section(
        session,
        who,
        "envois",
        _("Envois en cours"),
        _("Aucune commande n'est en cours d'envoi."),
        find(session, who, status=S.dispatching, limit=LIMIT),
    )
    now = clock.now()
    for c in sending.cards:
        order = access.get_order(session, who, c.order.id)
        c.waves = waves.for_order(session, order, now)
    return [
        _section(
            session,
            who,
            "acomptes",
            _("Acomptes attendus"),
            _("Aucune commande n'attend son acompte."),
            find(session, who, status=S.awaiting_deposit, limit=LIMIT),
        ),
        _section(
            session, who, "contenus", _("Contenus à relire"), _("Aucun message à relire."), review
        ),
        _section(
            session,
            who,
            "suspendues",
            _("Commandes suspendues"),
            _("Aucune commande suspendue."),
            find(session, who, status=S.on_hold, limit=LIMIT),
        ),
        _section(
            session,
            who,
            "annulations",
            _("Demandes d'annulation"),
            _("Aucune demande d'annulation."),
            cancelling,
        ),
        sending,
    ]


def _overdue(session: Session, who: Principal) -> list[InvoiceOut]:
    names = {o.id: o.name for o in accounts.organisations(session)}
    return [
        invoices.view(session, i, names.get(i.organisation_id, ""))
        for i in invoices.overdue_invoices(session, who, LIMIT)
    ]


def queue_page(
    request: Request, who: WebUser, problem: Problem | None = None, status: int = 200
) -> Response:
    """The whole queue; with a form sent back, its errors (the summary and beside the field)."""
    with unit_of_work() as session:
        sections = _orders(session, who.principal)
        overdue = _overdue(session, who.principal)
        rights = subjects.queue(session, clock.now(), status="open")
    done = request.query_params.get("fait", "")
    done_order = request.query_params.get("commande", "")
    context = common(who, "gestion") | {
        "sections": sections,
        "overdue": overdue,
        "rights": rights,
        "problem": problem,
        "errors": problem.summary() if problem else {},
        "done": DONE.get(done, ""),
        "done_order": done_order if is_id(done_order) else "",
        "today": clock.today_paris(),
    }
    return render(request, "staff_queue.html", context, status)


@router.get(QUEUE)
def work_queue(request: Request, who: StaffUserDep) -> Response:
    return queue_page(request, who)
