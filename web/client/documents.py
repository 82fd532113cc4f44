"""The documents of an order behind the session: its invoices' PDFs and its report in every
format, rendered by the same functions as the API's routes (reports/render.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from kit import clock
from kit.db import unit_of_work
from kit.errors import RentalError
from reports import invoices as invoice_documents
from reports import render
from reports import service as reports
from sales.invoices import service as invoices
from web.client.paths import DOCUMENTS
from web.i18n import gettext as _
from web.session import PageRefused, WebUserDep

router = APIRouter(include_in_schema=False)
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
    "json": "application/json",
}


def _file(body: bytes | str, fmt: str, name: str) -> Response:
    """A download; never cached, it is the customer's own."""
    response = Response(
        content=body,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(DOCUMENTS + "/commandes/{order_id}/rapport.{fmt}")
def report(who: WebUserDep, order_id: str, fmt: str) -> Response:
    """The send report, as `GET /v1/orders/{id}/report?format=` renders it."""
    if fmt not in reports.FORMATS:
        raise PageRefused(
            404, _("Format inconnu"), _("Le rapport existe en HTML, PDF, CSV et JSON.")
        )
    try:
        with unit_of_work() as session:
            found = reports.get_report(session, who.principal, order_id, clock.now())
    except RentalError as exc:
        if exc.status == 404:
            raise PageRefused(
                404,
                _("Commande introuvable"),
                _("Cette commande n'existe pas dans votre organisation."),
            ) from None
        raise PageRefused(
            409,
            _("Rapport pas encore disponible"),
            _(
                "Le rapport d'envoi existe dès que l'envoi commence. Revenez à la commande plus "
                "tard."
            ),
        ) from None
    name = f"rapport-{found.order_id}"
    if fmt == "html":
        page = HTMLResponse(render.report_html(found))
        page.headers["Cache-Control"] = "no-store"
        return page
    if fmt == "pdf":
        return _file(render.pdf(render.report_html(found)), fmt, name)
    if fmt == "csv":
        return _file(render.report_csv(found), fmt, name)
    return _file(render.report_json(found), fmt, name)


@router.get(DOCUMENTS + "/factures/{invoice_id}.pdf")
def invoice_pdf(who: WebUserDep, invoice_id: str) -> Response:
    """An invoice or credit note, as `GET /v1/invoices/{id}?format=pdf` renders it."""
    try:
        with unit_of_work() as session:
            invoice = invoices.get_invoice(session, who.principal, invoice_id)
            doc = invoice_documents.document(session, invoice)
            number = invoice.number
    except RentalError as exc:
        if exc.status != 404:
            raise
        raise PageRefused(
            404,
            _("Facture introuvable"),
            _("Cette facture n'existe pas dans votre organisation."),
        ) from None
    return _file(render.invoice_pdf(doc), "pdf", f"facture-{number}")
