"""Invoices and credit notes of orders, payments against them, late-payment penalties.

Numbers are `YYYY-NNNNNN`, one series per calendar year (Paris) shared by invoices and credit
notes, taken from a counter in the same transaction as the invoice: a rolled-back order leaves
no hole. An issued invoice is never changed or deleted; a credit note corrects it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kit import clock, locks
from kit.money import vat_cents
from kit.settings import get_settings
from sales.accounts.schemas import Principal
from sales.invoices import terms
from sales.invoices.exceptions import (
    InvoiceNotFound,
    NothingToPay,
    Overpayment,
    PaymentReferenceReused,
)
from sales.invoices.models import OPEN, Invoice, InvoiceKind, InvoiceStatus, Payment
from sales.invoices.repository import InvoiceRepository, PaymentRepository
from sales.invoices.schemas import InvoiceOut, PenaltyOut
from sales.pricing.schemas import Price
from webhooks import service as webhooks
from webhooks.events import EventType

K, ST = InvoiceKind, InvoiceStatus


def _issue(
    session: Session,
    *,
    kind: InvoiceKind,
    organisation_id: int,
    order_id: str,
    description: str,
    lines: list[dict[str, Any]],
    excl_cents: int,
    vat_rate: Decimal,
    vat: int,
    now: datetime,
    corrects: Invoice | None = None,
    status: InvoiceStatus | None = None,
) -> Invoice:
    local = now.astimezone(clock.PARIS)
    year = local.year
    sequence = locks.next_value(session, f"invoice:{year}")
    invoice = InvoiceRepository(session).add(
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
            lines=lines,
            amount_excl_vat_cents=excl_cents,
            vat_rate=str(vat_rate),
            vat_cents=vat,
            amount_incl_vat_cents=excl_cents + vat,
            issued_at=now,
            due_date=local.date() + timedelta(days=get_settings().terms.payment_terms_days),
            status=status or (ST.refund_due if kind == K.credit_note else ST.unpaid),
            paid_cents=0,
        )
    )
    # webhooks: written in this transaction, sent once it commits (the outbox)
    webhooks.emit(session, organisation_id, EventType.invoice_issued, invoice_data(invoice), now)
    return invoice


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    """The fields of the API's invoice that an event carries (GET /v1/invoices/{id} has the
    rest, and the document)."""
    return {
        "invoice_id": invoice.id,
        "number": invoice.number,
        "kind": invoice.kind.value,
        "order_id": invoice.order_id,
        "status": invoice.status.value,
        "amount_excl_vat_cents": invoice.amount_excl_vat_cents,
        "vat_cents": invoice.vat_cents,
        "amount_incl_vat_cents": invoice.amount_incl_vat_cents,
        "outstanding_cents": invoice.amount_incl_vat_cents - invoice.paid_cents,
        "currency": "EUR",
        "issued_at": invoice.issued_at.isoformat(),
        "due_date": invoice.due_date.isoformat(),
    }


def announce_overdue(session: Session, now: datetime, limit: int = 500) -> int:
    """`invoice.overdue` for each invoice past its due date and not paid in full (today in
    Paris), once per invoice. Returns how many were announced."""
    today = now.astimezone(clock.PARIS).date()
    announced = 0
    for invoice in InvoiceRepository(session).overdue(None, today, limit):
        data = invoice_data(invoice) | {"days_late": (today - invoice.due_date).days}
        key = f"invoice.overdue:{invoice.id}"
        event = EventType.invoice_overdue
        if webhooks.emit(session, invoice.organisation_id, event, data, now, key=key):
            announced += 1
    return announced


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
        kind=K.deposit,
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
        (i for i in InvoiceRepository(session).of_order(order_id) if i.kind == K.deposit), None
    )


def issue_balance(
    session: Session, organisation_id: int, order_id: str, final: Price, now: datetime
) -> Invoice | None:
    """After sending: the balance for the volume actually sent, or a credit note when the
    deposit exceeds it (None when they are equal to the cent)."""
    deposit = deposit_of(session, order_id)
    dep_excl = deposit.amount_excl_vat_cents if deposit else 0
    excl = final.total_excl_vat_cents - dep_excl
    if excl == 0:
        return None
    # VAT is computed on each document's own base (what an invoice must show); the bases add
    # up to the total for the volume sent exactly, the VAT amounts to within a cent.
    vat = vat_cents(abs(excl), final.vat_rate)
    lines = [
        *_price_lines(final),
        {"label": "Total for the volume sent", "amount_excl_vat_cents": final.total_excl_vat_cents},
    ]
    if deposit:
        lines.append(
            {"label": f"Less deposit invoice {deposit.number}", "amount_excl_vat_cents": -dep_excl}
        )
    if excl > 0:
        return _issue(
            session,
            kind=K.balance,
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
        kind=K.credit_note,
        organisation_id=organisation_id,
        order_id=order_id,
        description=f"Credit note on order {order_id}: the deposit exceeds the "
        f"{final.quantity} messages sent",
        lines=lines,
        excl_cents=-excl,
        vat_rate=final.vat_rate,
        vat=vat,
        now=now,
        corrects=deposit,
    )


def _split(amount_incl_vat_cents: int, invoice: Invoice) -> tuple[int, int]:
    """(excluding VAT, VAT) of a part of an invoice's amount including VAT."""
    if amount_incl_vat_cents == invoice.amount_incl_vat_cents:
        return invoice.amount_excl_vat_cents, invoice.vat_cents
    rate = Decimal(invoice.vat_rate)
    excl = int((Decimal(amount_incl_vat_cents) / (1 + rate)).quantize(Decimal(1), ROUND_HALF_UP))
    return excl, amount_incl_vat_cents - excl


def credit(
    session: Session,
    invoice: Invoice,
    amount_incl_vat_cents: int,
    status: InvoiceStatus,
    reason: str,
    now: datetime,
) -> Invoice:
    """A credit note on (part of) `invoice`: "applied" when it cancels what was still due,
    "refund_due" when money received is to be paid back."""
    excl, vat = _split(amount_incl_vat_cents, invoice)
    whole = amount_incl_vat_cents == invoice.amount_incl_vat_cents
    return _issue(
        session,
        kind=K.credit_note,
        organisation_id=invoice.organisation_id,
        order_id=invoice.order_id,
        description=f"Credit note on invoice {invoice.number}: {reason}",
        lines=[
            {
                "label": f"{'Cancels' if whole else 'Credits part of'} invoice {invoice.number}",
                "amount_excl_vat_cents": excl,
            }
        ],
        excl_cents=excl,
        vat_rate=Decimal(invoice.vat_rate),
        vat=vat,
        now=now,
        corrects=invoice,
        status=status,
    )


def cancel_open(session: Session, order_id: str, reason: str, now: datetime) -> list[Invoice]:
    """Close every invoice of the order still awaiting payment: a credit note cancels what was
    still due ("applied"); what was already paid stays paid (see `refund_paid`)."""
    notes = []
    for invoice in InvoiceRepository(session).of_order(order_id):
        if invoice.kind == K.credit_note or invoice.status not in OPEN:
            continue
        due = invoice.amount_incl_vat_cents - invoice.paid_cents
        notes.append(credit(session, invoice, due, ST.applied, reason, now))
        invoice.status = ST.cancelled
    return notes


def refund_paid(session: Session, invoice: Invoice, reason: str, now: datetime) -> Invoice | None:
    """A credit note refunding what was received on `invoice` (None when nothing was)."""
    if invoice.paid_cents <= 0:
        return None
    return credit(session, invoice, invoice.paid_cents, ST.refund_due, reason, now)


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
            "this payment reference is already recorded for another order "
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
    closed: bool = False,
) -> Recorded:
    """Apply a payment (amount including VAT) to the order's oldest open invoice. Idempotent on
    `reference`: the same payment recorded twice is recorded once. The caller holds the order's
    lock."""
    payments = PaymentRepository(session)
    existing = payments.by_reference(reference)
    if existing is not None:
        return _replay(session, existing, order_id, amount_cents)
    if closed:
        raise NothingToPay("the order is cancelled: no payment can be recorded against it")
    invoice = next(
        (
            i
            for i in InvoiceRepository(session).of_order(order_id)
            if i.kind != K.credit_note and i.status in OPEN
        ),
        None,
    )
    if invoice is None:
        raise NothingToPay("no invoice of this order is awaiting payment")
    outstanding = invoice.amount_incl_vat_cents - invoice.paid_cents
    if amount_cents > outstanding:
        raise Overpayment(
            f"the payment exceeds what is still due on the {invoice.kind} invoice, VAT "
            "included (see outstanding_cents)",
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
        invoice.status, invoice.paid_on = ST.paid, received_on
    else:
        invoice.status = ST.partially_paid
    session.flush()
    return Recorded(payment, invoice, created=True)


def penalty(invoice: Invoice, payments: list[Payment], today: date) -> PenaltyOut | None:
    """Penalties on an invoice for what was paid late and what is still overdue (up to
    today); none on credit notes and cancelled invoices."""
    if invoice.kind == K.credit_note or invoice.status == ST.cancelled:
        return None
    portions = [(p.amount_cents, p.received_on) for p in payments]
    if invoice.status in OPEN:
        portions.append((invoice.amount_incl_vat_cents - invoice.paid_cents, today))
    p = terms.penalty_for(invoice.due_date, portions)
    if p.days_late <= 0:
        return None
    return PenaltyOut(
        days_late=p.days_late,
        annual_rate_percent=p.annual_rate_percent,
        interest_cents=p.interest_cents,
        recovery_indemnity_cents=p.indemnity_cents,
        total_cents=p.total_cents,
        computed_on=today if invoice.status in OPEN else max(d for _, d in portions),
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
        lines=invoice.lines,
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
        penalty=penalty(
            invoice, PaymentRepository(session).of_invoice(invoice.id), clock.today_paris()
        ),
    )


def get_invoice(session: Session, who: Principal, invoice_id: str) -> Invoice:
    invoice = InvoiceRepository(session).get(invoice_id, who.scope())
    if invoice is None:
        raise InvoiceNotFound("no such invoice in your organisation")
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
    org = who.scope(organisation_id)
    return InvoiceRepository(session).search(org, kind, status, order_id, limit, offset)


def overdue_invoices(session: Session, who: Principal, limit: int = 100) -> list[Invoice]:
    """Invoices past their due date and not paid in full (today in Paris), the longest overdue
    first; a client only ever sees its own organisation's."""
    return InvoiceRepository(session).overdue(who.scope(), clock.today_paris(), limit)
