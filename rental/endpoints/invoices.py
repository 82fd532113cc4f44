"""HTTP: invoices and credit notes, as JSON or as documents (rendered by reports/)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse

from kit import http_errors as errors
from kit.fields import one_of
from kit.text import SafeText
from reports import invoices as documents
from reports import render
from reports import service as report_service
from sales.accounts.deps import (
    IdPath,
    IdQuery,
    Limit,
    Offset,
    OrganisationQuery,
    PrincipalDep,
    SessionDep,
)
from sales.accounts.service import organisation_name
from sales.invoices import service
from sales.invoices.models import InvoiceKind, InvoiceStatus
from sales.invoices.schemas import InvoiceList, InvoiceOut

router = APIRouter(tags=["invoices"])
INVOICE_FORMATS = ("json", "html", "pdf")


@router.get(
    "/invoices", response_model=InvoiceList, summary="Invoices and credit notes, newest first"
)
def list_invoices(
    who: PrincipalDep,
    session: SessionDep,
    kind: str | None = Query(default=None, pattern=one_of(InvoiceKind)),
    status: str | None = Query(
        default=None,
        pattern=one_of(InvoiceStatus),
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


@router.get(
    "/invoices/{invoice_id}",
    response_model=InvoiceOut,
    summary="An invoice or credit note: JSON, or the document (?format=html|pdf)",
    responses={
        200: {"content": {"text/html": {}, "application/pdf": {}}},
        **errors.responses(404),
    },
)
def get_invoice(
    invoice_id: IdPath,
    who: PrincipalDep,
    session: SessionDep,
    format: Annotated[
        SafeText,
        Query(
            max_length=20,
            description="json, html or pdf",
            json_schema_extra={"enum": list(INVOICE_FORMATS)},
        ),
    ] = "json",
) -> InvoiceOut | Response:
    fmt = report_service.check_format(format, INVOICE_FORMATS)
    invoice = service.get_invoice(session, who, invoice_id)
    if fmt == "json":
        return service.view(session, invoice, organisation_name(session, invoice.organisation_id))
    doc = documents.document(session, invoice)
    if fmt == "html":
        return HTMLResponse(render.invoice_html(doc))
    return Response(
        render.invoice_pdf(doc),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="invoice-{invoice.number}.pdf"'},
    )
