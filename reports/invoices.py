"""Invoices and credit notes as documents, with the mentions a French invoice needs (Code de
commerce L441-9, CGI art. 242 nonies A): seller and customer identity with their VAT numbers,
a unique sequential number, the dates (issue, service, due), each line excluding VAT, the VAT
rate and amount, totals excluding and including VAT, the payment terms, the late-payment
penalty rate and the 40 EUR recovery indemnity; a credit note names the invoice it corrects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from kit.settings import get_settings
from sales.accounts.service import get_organisation
from sales.invoices import service as invoices
from sales.invoices import terms
from sales.invoices.models import Invoice, InvoiceKind
from sales.invoices.repository import InvoiceRepository
from sales.orders.repository import OrderRepository
from sales.orders.states import OrderStatus

TITLES = {
    "deposit": ("Facture d'acompte", "Deposit invoice"),
    "balance": ("Facture de solde", "Balance invoice"),
    "credit_note": ("Avoir", "Credit note"),
}


def _service_date(session: Session, invoice: Invoice) -> datetime | None:
    """When the service was rendered: the order's sending, once it is sent."""
    for e in OrderRepository(session).events(invoice.order_id):
        if e.to_status == OrderStatus.sent:
            return e.at
    return None


def _corrects_issued_at(session: Session, invoice: Invoice) -> datetime | None:
    """When the invoice a credit note corrects was issued (the e-invoice cites its date)."""
    if invoice.corrects_id is None:
        return None
    corrected = InvoiceRepository(session).get(invoice.corrects_id, None)
    return corrected.issued_at if corrected else None


def document(session: Session, invoice: Invoice) -> dict[str, Any]:
    """Everything the invoice template prints, and its Factur-X XML says (reports.facturx)."""
    s = get_settings()
    org = get_organisation(session, invoice.organisation_id)
    out = invoices.view(session, invoice, org.name)
    title_fr, title_en = TITLES.get(invoice.kind, ("Facture", "Invoice"))
    return {
        "title_fr": title_fr,
        "title_en": title_en,
        "invoice": out,
        "is_credit_note": invoice.kind == InvoiceKind.credit_note,
        "service_date": _service_date(session, invoice),
        "corrects_issued_at": _corrects_issued_at(session, invoice),
        "seller": {
            "name": s.seller.name,
            "legal_form": s.seller.legal_form,
            "address": s.seller.address,
            "siren": s.seller.siren,
            "rcs": s.seller.rcs,
            "vat_number": s.seller.vat_number,
            "bank_details": s.seller.bank_details,
        },
        "customer": {
            "name": org.name,
            "address": org.billing_address,
            "vat_number": org.vat_number,
            "siren": org.siren,
        },
        "penalty_points": terms.PENALTY_POINTS,
        "recovery_indemnity_cents": terms.RECOVERY_INDEMNITY_CENTS,
        "payment_terms_days": s.terms.payment_terms_days,
    }
