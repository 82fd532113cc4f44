"""HTTP: invoices and credit notes (JSON; documents come with the reports)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from rental.accounts.service import organisation_name
from rental.deps import IdPath, IdQuery, Limit, Offset, OrganisationQuery, PrincipalDep, SessionDep
from rental.invoices import service
from rental.invoices.schemas import InvoiceList, InvoiceOut

router = APIRouter(tags=["invoices"])


@router.get(
    "/invoices", response_model=InvoiceList, summary="Invoices and credit notes, newest first"
)
def list_invoices(
    who: PrincipalDep,
    session: SessionDep,
    kind: str | None = Query(default=None, pattern="^(deposit|balance|credit_note)$"),
    status: str | None = Query(
        default=None,
        pattern="^(unpaid|partially_paid|paid|cancelled|refund_due|refunded|applied)$",
    ),
    order_id: IdQuery = None,
    organisation_id: OrganisationQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> InvoiceList:
    found = service.list_invoices(
        session,
        who,
        organisation_id=organisation_id,
        kind=kind,
        status=status,
        order_id=order_id,
        limit=limit,
        offset=offset,
    )
    names: dict[int, str] = {}
    items = []
    for invoice in found:
        if invoice.organisation_id not in names:
            names[invoice.organisation_id] = organisation_name(session, invoice.organisation_id)
        items.append(service.view(session, invoice, names[invoice.organisation_id]))
    return InvoiceList(items=items, limit=limit, offset=offset)


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut)
def get_invoice(invoice_id: IdPath, who: PrincipalDep, session: SessionDep) -> InvoiceOut:
    invoice = service.get_invoice(session, who, invoice_id)
    return service.view(session, invoice, organisation_name(session, invoice.organisation_id))
