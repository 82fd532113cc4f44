"""The marketer's lists: orders (by status), invoices (to pay, paid, overdue with their
penalties) and quotes, newest first, from the services the API's list routes call."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from kit.db import unit_of_work
from sales.accounts.schemas import Principal
from sales.accounts.service import organisation_name
from sales.invoices import service as invoices
from sales.invoices.models import Invoice, InvoiceStatus
from sales.orders import access
from sales.orders import view as order_view
from sales.orders.states import OrderStatus
from sales.quotes import service as quotes
from web.client.paths import INVOICES, ORDERS, QUOTES, invoice_file, order_page
from web.i18n import N_, Words
from web.session import STAFF_HOME, WebUserDep
from web.staff import words
from web.templating import render

router = APIRouter(include_in_schema=False)
LIMIT = 100
# The invoices' filters, as the page names them.
INVOICE_FILTERS = Words(
    {
        "": N_("Toutes"),
        "a-payer": N_("À payer"),
        "en-retard": N_("En retard"),
        "payees": N_("Payées"),
    }
)


def _to_queue() -> Response:
    """These lists are a client's; the broker's staff work from their queue."""
    return RedirectResponse(STAFF_HOME, status_code=303)


def _common(who: Any, active: str) -> dict[str, Any]:
    return {"user": who, "active": active, "w": words, "when": words.when, "day": words.day}


@router.get(ORDERS)
def orders_list(request: Request, who: WebUserDep) -> Response:
    """The organisation's orders; `?etat=` one status."""
    if who.principal.is_staff:
        return _to_queue()
    wanted = request.query_params.get("etat", "")
    status = OrderStatus(wanted) if wanted in {s.value for s in OrderStatus} else None
    with unit_of_work() as session:
        found = access.list_orders(session, who.principal, status=status, limit=LIMIT)
        items = [order_view.view(session, o, who.principal) for o in found]
    context = _common(who, "commandes")
    context.update(items=items, status=status.value if status else "", page=order_page)
    return render(request, "client_orders.html", context)


def _invoices(session: Session, who: Principal, wanted: str) -> list[Invoice]:
    if wanted == "en-retard":
        return invoices.overdue_invoices(session, who, LIMIT)
    if wanted == "payees":
        return invoices.list_invoices(session, who, status=InvoiceStatus.paid, limit=LIMIT)
    if wanted == "a-payer":
        open_ = [InvoiceStatus.unpaid, InvoiceStatus.partially_paid]
        found = [i for s in open_ for i in invoices.list_invoices(session, who, status=s)]
        return sorted(found, key=lambda i: (i.year, i.sequence), reverse=True)[:LIMIT]
    return invoices.list_invoices(session, who, limit=LIMIT)


@router.get(INVOICES)
def invoices_list(request: Request, who: WebUserDep) -> Response:
    """The organisation's invoices and credit notes; `?etat=` a-payer, en-retard or payees."""
    if who.principal.is_staff:
        return _to_queue()
    wanted = request.query_params.get("etat", "")
    wanted = wanted if wanted in INVOICE_FILTERS else ""
    with unit_of_work() as session:
        found = _invoices(session, who.principal, wanted)
        names = {i.organisation_id: organisation_name(session, i.organisation_id) for i in found}
        items = [invoices.view(session, i, names[i.organisation_id]) for i in found]
    context = _common(who, "factures")
    context.update(
        items=items,
        wanted=wanted,
        filters=INVOICE_FILTERS,
        page=order_page,
        invoice_file=invoice_file,
        base=INVOICES,
    )
    return render(request, "client_invoices.html", context)


@router.get(QUOTES)
def quotes_list(request: Request, who: WebUserDep) -> Response:
    """The organisation's quotes: the count shown, the price, until when it can be ordered."""
    if who.principal.is_staff:
        return _to_queue()
    with unit_of_work() as session:
        found = quotes.list_quotes(session, who.principal, LIMIT)
        items = [quotes.view(q, who.principal) for q in found]
    context = _common(who, "devis")
    context.update(items=items, in_words=words.in_words)
    return render(request, "client_quotes.html", context)
