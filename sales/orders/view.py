"""An order as its reader may see it: a client sees its own organisation's, without what only
the broker's staff may know (the exact count, the reservation, a carrier's errors)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from kit.settings import get_settings
from sales.accounts.models import Role
from sales.accounts.repository import AccountRepository
from sales.accounts.schemas import Principal
from sales.invoices import service as invoices
from sales.invoices.models import Invoice, InvoiceStatus
from sales.invoices.repository import InvoiceRepository
from sales.messages.service import (
    UCS2,
    UCS2_SINGLE,
    CheckedMessage,
    check_by_zone,
    part_size,
    worst_case,
)
from sales.orders.access import quote_of
from sales.orders.models import Order
from sales.orders.repository import OrderRepository
from sales.orders.schemas import (
    Amount,
    ContentReviewOut,
    EventOut,
    MessageCheck,
    OrderOut,
    OrderStaffOut,
)
from sales.orders.states import SYSTEM, HoldKind, OrderStatus

# Event details for the broker's staff only: a carrier's error says how the broker's sending
# is set up (an SMSC's address, a refused bind).
STAFF_DETAILS = ("last_error",)


def _amount(excl: int, vat: int) -> Amount:
    return Amount(amount_excl_vat_cents=excl, vat_cents=vat, amount_incl_vat_cents=excl + vat)


def _note(worst: CheckedMessage) -> str:
    """What the encoding and length mean for the price."""
    return (
        f"{worst.encoding}: {worst.characters} characters with the STOP and source mentions, "
        f"{worst.segments} SMS segment(s) per message; transport is billed per segment"
        + (
            ""
            if worst.segments == 1
            else f" (concatenated parts hold {part_size(worst.encoding)} characters)"
        )
        + (
            ". One character outside the GSM alphabet makes the whole message UCS-2, "
            f"{UCS2_SINGLE} characters per segment"
            if worst.encoding == UCS2
            else ""
        )
    )


def _message_check(order: Order, zones: dict[str, int]) -> MessageCheck:
    checks = check_by_zone(order.message)
    worst = worst_case(checks, zones)
    return MessageCheck(
        encoding=worst.encoding,
        characters=worst.characters,
        segments=worst.segments,
        max_segments=get_settings().messages.max_segments,
        by_zone={
            z: {"encoding": c.encoding, "characters": c.characters, "segments": c.segments}
            for z, c in checks.items()
        },
        preview=worst.full_text,
        note=_note(worst),
    )


def _by(event_actor: str, user_name: str | None, viewer: Principal, same_org: bool) -> str:
    if event_actor == SYSTEM:
        return SYSTEM
    if event_actor in (Role.account_manager.value, Role.admin.value):
        return "account manager" if not viewer.is_staff else f"account manager {user_name}"
    return user_name if (same_org or viewer.is_staff) and user_name else "client"


def _details(details: dict[str, Any], viewer: Principal) -> dict[str, Any]:
    if viewer.is_staff:
        return details
    return {k: v for k, v in details.items() if k not in STAFF_DETAILS}


def _events(session: Session, order: Order, who: Principal) -> list[EventOut]:
    """The order's history; who acted is named as the viewer may know them."""
    events = OrderRepository(session).events(order.id)
    users = AccountRepository(session).users({e.user_id for e in events if e.user_id})
    return [
        EventOut(
            at=e.at,
            action=e.action,
            by=_by(
                e.actor,
                users[e.user_id].name if e.user_id in users else None,
                who,
                e.user_id in users and users[e.user_id].organisation_id == who.organisation_id,
            ),
            from_status=e.from_status,
            to_status=e.to_status,
            details=_details(e.details, who),
        )
        for e in events
    ]


def _reservation(order: Order) -> str:
    if order.hold_kind == HoldKind.volume:
        return "short"
    return "complete" if order.reserved > 0 else "none"


def _offered_quantity(order: Order) -> int | None:
    """On hold for volume: what can be sent instead (nothing under the minimum size)."""
    if (
        order.hold_kind == HoldKind.volume
        and order.reserved >= get_settings().privacy.min_segment_size
    ):
        return order.reserved
    return None


def _deposit(invoice: Invoice | None) -> Amount:
    if invoice is None:
        return _amount(0, 0)
    return _amount(invoice.amount_excl_vat_cents, invoice.vat_cents)


def view(session: Session, order: Order, who: Principal) -> OrderOut:
    quote = quote_of(session, order)
    p = order.price
    deposit = invoices.deposit_of(session, order.id)
    fields: dict[str, Any] = dict(
        id=order.id,
        status=order.status.value,
        quote_id=order.quote_id,
        quantity=order.quantity,
        message=order.message,
        sender=order.sender,
        send_at=order.send_at,
        encoding=order.encoding,
        characters=order.characters,
        segments=order.segments,
        message_check=_message_check(order, quote.zone_mix),
        price=p,
        total=_amount(p.total_excl_vat_cents, p.vat_cents),
        deposit=_deposit(deposit),
        deposit_paid=deposit is not None and deposit.status == InvoiceStatus.paid,
        content_review=ContentReviewOut(status=order.content_status, note=order.content_note),
        reservation=_reservation(order),
        hold_reason=order.hold_reason,
        offered_quantity=_offered_quantity(order),
        cancellation_requested=order.cancel_requested_at is not None
        and order.status is not OrderStatus.cancelled,
        invoices=[i.id for i in InvoiceRepository(session).of_order(order.id)],
        created_at=order.created_at,
        events=_events(session, order, who),
    )
    if who.is_staff:
        org = AccountRepository(session).organisation(order.organisation_id)
        return OrderStaffOut(
            **fields,
            organisation=org.name if org else "",
            reserved=order.reserved,
            quote_exact_count=quote.exact_count,
        )
    return OrderOut(**fields)
