"""Invoices and credit notes of orders, payments against them, late-payment penalties.

Numbers are `YYYY-NNNNNN`, one series per calendar year (Paris) shared by invoices and credit
notes, taken from a counter in the same transaction as the invoice: a rolled-back order leaves
no hole. An issued invoice is never changed or deleted; a credit note corrects it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kit import clock, locks
from kit.money import vat_cents
from kit.settings import get_settings
from rental.accounts.schemas import Principal
from rental.invoices import terms
from rental.invoices.exceptions import (
    InvoiceNotFound,
    NothingToPay,
    Overpayment,
    PaymentReferenceReused,
)
from rental.invoices.models import Invoice, Payment
from rental.invoices.repository import InvoiceRepository, PaymentRepository
from rental.invoices.schemas import InvoiceOut, PenaltyOut
from rental.pricing.schemas import Price

DEPOSIT, BALANCE, CREDIT_NOTE = "deposit", "balance", "credit_note"
OPEN = ("unpaid", "partially_paid")


def _issue(
    session: Session,
    *,
    kind: str,
    organisation_id: int,
    order_id: str,
    description: str,
    lines: list[dict[str, Any]],
    excl_cents: int,
    vat_rate: Decimal,
    vat: int,
    now: datetime,
    corrects: Invoice | None = None,
    status: str | None = None,
) -> Invoice:
    local = now.astimezone(clock.PARIS)
    year = local.year
    sequence = locks.next_value(session, f"invoice:{year}")
    return InvoiceRepository(session).add(
        Invoice(
            id=str(uuid.uuid4()),
            number=f"{year}-{sequence:06d}",
            year=year,
            sequence=sequence,
            kind=kind,
            organisation_id=organisation_id,
            order_id=order_id,
            corrects_id=corrects.id if corrects else None,
            description=description,
            lines=json.dumps(lines),
            amount_excl_vat_cents=excl_cents,
            vat_rate=str(vat_rate),
            vat_cents=vat,
            amount_incl_vat_cents=excl_cents + vat,
            issued_at=now,
            due_date=local.date() + timedelta(days=get_settings().payment_terms_days),
            status=status or ("refund_due" if kind == CREDIT_NOTE else "unpaid"),
            paid_cents=0,
        )
    )


def _price_lines(p: Price) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [
        {
            "label": f"File rental: {p.quantity} contacts at {p.rental_per_contact_eur} EUR",
            "amount_excl_vat_cents": p.rental_cents,
        }
    ]
    for z in p.transport:
        if z.messages:
            lines.append(
                {
                    "label": f"SMS transport ({z.zone}): {z.messages} messages x "
                    f"{z.segments_per_message} segment(s) at {z.unit_eur} EUR",
                    "amount_excl_vat_cents": z.amount_cents,
                }
            )
    return lines


def issue_deposit(
    session: Session, organisation_id: int, order_id: str, total: Price, now: datetime
) -> Invoice:
    """The 30% deposit invoice, due at order."""
    excl = terms.deposit_cents(total.total_excl_vat_cents)
    return _issue(
        session,
        kind=DEPOSIT,
        organisation_id=organisation_id,
        order_id=order_id,
        description=f"Deposit (30%) on file rental order {order_id}",
        lines=[
            *_price_lines(total),
            {"label": "Order total", "amount_excl_vat_cents": total.total_excl_vat_cents},
            {"label": "Deposit: 30% of the order total", "amount_excl_vat_cents": excl},
        ],
        excl_cents=excl,
        vat_rate=total.vat_rate,
        vat=vat_cents(excl, total.vat_rate),
        now=now,
    )


def deposit_of(session: Session, order_id: str) -> Invoice | None:
    return next(
        (i for i in InvoiceRepository(session).of_order(order_id) if i.kind == DEPOSIT), None
    )


def issue_balance(
    session: Session, organisation_id: int, order_id: str, final: Price, now: datetime
) -> Invoice | None:
    """After sending: the balance for the volume actually sent, or a credit note when the
    deposit exceeds it (None when they are equal to the cent)."""
    deposit = deposit_of(session, order_id)
    dep_excl = deposit.amount_excl_vat_cents if deposit else 0
    dep_vat = deposit.vat_cents if deposit else 0
    excl = final.total_excl_vat_cents - dep_excl
    vat = final.vat_cents - dep_vat
    if excl == 0 and vat == 0:
        return None
    lines = [
        *_price_lines(final),
        {"label": "Total for the volume sent", "amount_excl_vat_cents": final.total_excl_vat_cents},
    ]
    if deposit:
        lines.append(
            {"label": f"Less deposit invoice {deposit.number}", "amount_excl_vat_cents": -dep_excl}
        )
    if excl + vat > 0:
        return _issue(
            session,
            kind=BALANCE,
            organisation_id=organisation_id,
            order_id=order_id,
            description=f"Balance of file rental order {order_id}: {final.quantity} messages sent",
            lines=lines,
            excl_cents=excl,
            vat_rate=final.vat_rate,
            vat=vat,
            now=now,
        )
    return _issue(
        session,
        kind=CREDIT_NOTE,
        organisation_id=organisation_id,
        order_id=order_id,
        description=f"Credit note on order {order_id}: the deposit exceeds the "
        f"{final.quantity} messages sent",
        lines=lines,
        excl_cents=-excl,
        vat_rate=final.vat_rate,
        vat=-vat,
        now=now,
        corrects=deposit,
    )


def credit(session: Session, invoice: Invoice, reason: str, now: datetime) -> Invoice:
    """A credit note for the whole of `invoice`: it cancels it when nothing was paid
    ("applied"), otherwise the amount paid is to be refunded ("refund_due")."""
    paid = invoice.paid_cents > 0
    note = _issue(
        session,
        kind=CREDIT_NOTE,
        organisation_id=invoice.organisation_id,
        order_id=invoice.order_id,
        description=f"Credit note cancelling invoice {invoice.number}: {reason}",
        lines=[
            {
                "label": f"Cancels invoice {invoice.number}",
                "amount_excl_vat_cents": invoice.amount_excl_vat_cents,
            }
        ],
        excl_cents=invoice.amount_excl_vat_cents,
        vat_rate=Decimal(invoice.vat_rate),
        vat=invoice.vat_cents,
        now=now,
        corrects=invoice,
        status="refund_due" if paid else "applied",
    )
    if not paid:
        invoice.status = "cancelled"
    return note


def cancel_open(session: Session, order_id: str, reason: str, now: datetime) -> list[Invoice]:
    """Credit notes cancelling every invoice of the order still wholly unpaid."""
    return [
        credit(session, i, reason, now)
        for i in InvoiceRepository(session).of_order(order_id)
        if i.kind != CREDIT_NOTE and i.status == "unpaid"
    ]


@dataclass(frozen=True)
class Recorded:
    payment: Payment
    invoice: Invoice
    created: bool  # False: the same payment was recorded before (idempotent replay)


def _same_payment(existing: Payment, order_id: str, amount_cents: int) -> bool:
    return existing.order_id == order_id and existing.amount_cents == amount_cents


def _replay(session: Session, existing: Payment, order_id: str, amount_cents: int) -> Recorded:
    if not _same_payment(existing, order_id, amount_cents):
        raise PaymentReferenceReused(
            f"payment reference {existing.reference!r} is already recorded for another order "
            "or amount: use the bank's unique reference of this payment"
        )
    invoice = InvoiceRepository(session).get(existing.invoice_id, None)
    assert invoice is not None  # noqa: S101  (foreign key)
    return Recorded(existing, invoice, created=False)


def record_payment(
    session: Session,
    who: Principal,
    order_id: str,
    reference: str,
    amount_cents: int,
    received_on: date,
    now: datetime,
) -> Recorded:
    """Apply a payment (amount including VAT) to the order's oldest open invoice. Idempotent on
    `reference`: the same payment recorded twice is recorded once. The caller holds the order's
    lock."""
    payments = PaymentRepository(session)
    existing = payments.by_reference(reference)
    if existing is not None:
        return _replay(session, existing, order_id, amount_cents)
    invoice = next(
        (
            i
            for i in InvoiceRepository(session).of_order(order_id)
            if i.kind != CREDIT_NOTE and i.status in OPEN
        ),
        None,
    )
    if invoice is None:
        raise NothingToPay("no invoice of this order is awaiting payment")
    outstanding = invoice.amount_incl_vat_cents - invoice.paid_cents
    if amount_cents > outstanding:
        raise Overpayment(
            f"the payment of {amount_cents} cents exceeds the {outstanding} cents still due on "
            f"invoice {invoice.number} (amounts include VAT)",
            outstanding_cents=outstanding,
            invoice=invoice.number,
        )
    payment = Payment(
        reference=reference,
        invoice_id=invoice.id,
        order_id=order_id,
        amount_cents=amount_cents,
        received_on=received_on,
        recorded_by=who.user_id,
        recorded_at=now,
    )
    try:
        with session.begin_nested():
            payments.add(payment)
    except IntegrityError:  # recorded concurrently under the same reference
        existing = payments.by_reference(reference)
        if existing is None:
            raise
        return _replay(session, existing, order_id, amount_cents)
    invoice.paid_cents += amount_cents
    if invoice.paid_cents >= invoice.amount_incl_vat_cents:
        invoice.status, invoice.paid_on = "paid", received_on
    else:
        invoice.status = "partially_paid"
    session.flush()
    return Recorded(payment, invoice, created=True)


def penalty(invoice: Invoice, today: date) -> PenaltyOut | None:
    """Penalties on an invoice paid late (up to its payment) or overdue (up to today)."""
    if invoice.kind == CREDIT_NOTE or invoice.status == "cancelled":
        return None
    until = invoice.paid_on if invoice.status == "paid" and invoice.paid_on else today
    p = terms.late_penalty(invoice.amount_incl_vat_cents, invoice.due_date, until)
    if p.days_late <= 0:
        return None
    return PenaltyOut(
        days_late=p.days_late,
        annual_rate_percent=p.annual_rate_percent,
        interest_cents=p.interest_cents,
        recovery_indemnity_cents=p.indemnity_cents,
        total_cents=p.total_cents,
        computed_on=until,
    )


def view(session: Session, invoice: Invoice, organisation: str) -> InvoiceOut:
    corrects = (
        InvoiceRepository(session).get(invoice.corrects_id, None) if invoice.corrects_id else None
    )
    return InvoiceOut(
        id=invoice.id,
        number=invoice.number,
        kind=invoice.kind,
        order_id=invoice.order_id,
        organisation=organisation,
        corrects=corrects.number if corrects else None,
        description=invoice.description,
        lines=json.loads(invoice.lines),
        amount_excl_vat_cents=invoice.amount_excl_vat_cents,
        vat_rate=Decimal(invoice.vat_rate),
        vat_cents=invoice.vat_cents,
        amount_incl_vat_cents=invoice.amount_incl_vat_cents,
        issued_at=invoice.issued_at,
        due_date=invoice.due_date,
        status=invoice.status,
        paid_cents=invoice.paid_cents,
        outstanding_cents=(
            invoice.amount_incl_vat_cents - invoice.paid_cents if invoice.status in OPEN else 0
        ),
        paid_on=invoice.paid_on,
        penalty=penalty(invoice, clock.today_paris()),
    )


def get_invoice(session: Session, who: Principal, invoice_id: str) -> Invoice:
    invoice = InvoiceRepository(session).get(
        invoice_id, None if who.is_staff else who.organisation_id
    )
    if invoice is None:
        raise InvoiceNotFound(f"no invoice {invoice_id!r} in your organisation")
    return invoice


def list_invoices(
    session: Session,
    who: Principal,
    *,
    organisation_id: int | None = None,
    kind: str | None = None,
    status: str | None = None,
    order_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Invoice]:
    """Newest first; a client only ever sees its own organisation's."""
    org = organisation_id if who.is_staff else who.organisation_id
    return InvoiceRepository(session).search(org, kind, status, order_id, limit, offset)
