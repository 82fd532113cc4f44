"""The money of an order: payments recorded against its invoices (the paid deposit confirms
it), its price for another quantity, and the balance invoice once it is sent."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from kit import clock
from sales.accounts.schemas import Principal
from sales.invoices import service as invoices
from sales.invoices.models import Invoice, InvoiceKind, InvoiceStatus
from sales.messages.service import check_by_zone, segments_by_zone
from sales.orders import flows
from sales.orders.access import actor, lock, quote_of
from sales.orders.exceptions import InvalidPaymentDate
from sales.orders.models import Order
from sales.orders.repository import OrderRepository
from sales.orders.states import SYSTEM, OrderAction, OrderStatus
from sales.pricing.schemas import Price
from sales.pricing.service import price
from segmentation.runtime import Segmenter


def deposit_paid(session: Session, order: Order) -> bool:
    deposit = invoices.deposit_of(session, order.id)
    return deposit is not None and deposit.status == InvoiceStatus.paid


def _check_received_on(order: Order, received_on: date | None, now: datetime) -> date:
    """The day the bank received the payment: today when not given, never in the future nor
    before the order was placed."""
    today = now.astimezone(clock.PARIS).date()
    day = received_on or today
    if day > today:
        raise InvalidPaymentDate(
            "received_on is after today: give the day the bank received the payment"
        )
    if day < order.created_at.astimezone(clock.PARIS).date():
        raise InvalidPaymentDate(
            "received_on is before the order was placed: give the day the bank received the payment"
        )
    return day


def record_payment(
    session: Session,
    who: Principal,
    order_id: str,
    reference: str,
    amount_cents: int,
    received_on: date | None,
    seg: Segmenter,
) -> invoices.Recorded:
    """An account manager records a payment received; the paid deposit confirms the order."""
    now = clock.now()
    order = lock(session, who, order_id)
    day = _check_received_on(order, received_on, now)
    recorded = invoices.record_payment(
        session,
        who,
        order.id,
        reference,
        amount_cents,
        day,
        now,
        closed=order.status is OrderStatus.cancelled,
    )
    if not recorded.created:
        return recorded
    OrderRepository(session).add_event(
        order.id,
        now,
        who.user_id,
        actor(who),
        OrderAction.payment_recorded,
        details={
            "reference": reference,
            "amount_cents": amount_cents,
            "invoice": recorded.invoice.number,
            "invoice_status": recorded.invoice.status,
        },
    )
    if (
        recorded.invoice.kind == InvoiceKind.deposit
        and recorded.invoice.status == InvoiceStatus.paid
        and order.status is OrderStatus.awaiting_deposit
    ):
        flows.confirm(session, order, quote_of(session, order), seg, now, None, SYSTEM)
    return recorded


def reprice(session: Session, order: Order, quantity: int) -> Price:
    """The order's price for another quantity: same grid, zone mix and message."""
    zones = quote_of(session, order).zone_mix
    return price(order.grid, quantity, zones, segments_by_zone(check_by_zone(order.message)))


def invoice_balance(session: Session, order: Order, sent: int, now: datetime) -> Invoice | None:
    """After sending: the balance invoice for the volume sent, or a credit note when the deposit
    exceeds it. The dispatch calls this once, when the order becomes `sent`."""
    final = reprice(session, order, sent)
    invoice = invoices.issue_balance(session, order.organisation_id, order.id, final, now)
    if invoice is not None:
        OrderRepository(session).add_event(
            order.id,
            now,
            None,
            SYSTEM,
            OrderAction.balance_invoiced
            if invoice.kind == InvoiceKind.balance
            else OrderAction.credit_note_issued,
            details={
                "invoice": invoice.number,
                "sent": sent,
                "amount_incl_vat_cents": invoice.amount_incl_vat_cents,
            },
        )
    return invoice
