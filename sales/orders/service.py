"""Orders: placing one from a quote, reading them, and every action on them.

Services never commit. Every action that changes an order first locks it (`lock`), so that two
requests acting on the same order run one after the other, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from kit import clock
from kit.settings import get_settings
from sales.accounts.models import ContentReview, Role
from sales.accounts.repository import AccountRepository
from sales.accounts.schemas import Principal
from sales.invoices import service as invoices
from sales.invoices.models import Invoice
from sales.invoices.repository import InvoiceRepository
from sales.messages.service import (
    GSM_MULTI,
    UCS2_MULTI,
    UCS2_SINGLE,
    CheckedMessage,
    check_message,
    check_sender,
)
from sales.orders import flows
from sales.orders.exceptions import (
    CancellationAlreadyRequested,
    InvalidPaymentDate,
    InvalidSendTime,
    NothingToRevise,
    OrderLocked,
    OrderNotFound,
    PriceWouldChange,
    QuantityOutOfRange,
    SegmentTooSmall,
)
from sales.orders.models import Order
from sales.orders.repository import OrderRepository
from sales.orders.schemas import (
    Amount,
    ContentReviewOut,
    EventOut,
    MessageCheck,
    OrderCreate,
    OrderOut,
    OrderRevision,
    OrderStaffOut,
)
from sales.orders.states import InvalidTransition, OrderStatus, check_transition
from sales.pricing.schemas import Price, PriceGrid
from sales.pricing.service import grid_for, price
from sales.quotes.exceptions import QuoteExpired, QuoteNotFound
from sales.quotes.models import Quote
from sales.quotes.repository import QuoteRepository
from sales.quotes.service import zone_mix_of
from segmentation.runtime import Segmenter

S = OrderStatus
# Where an order can still be cancelled, and where its message may still be revised.
REVISABLE = (S.awaiting_deposit, S.confirmed)  # content review may still change


def _actor(who: Principal) -> str:
    return who.role.value


def _messages(text: str) -> dict[str, CheckedMessage]:
    """The message as each destination zone receives it (the STOP mention differs overseas).
    Both forms must fit, whatever the quote's zone mix: suppressed cells hide small zones."""
    return {zone: check_message(text, zone == "metro") for zone in ("metro", "overseas")}


def _worst(checks: dict[str, CheckedMessage], zones: dict[str, int]) -> CheckedMessage:
    present = [checks[z] for z in checks if zones.get(z, 0) > 0] or [checks["metro"]]
    return max(present, key=lambda c: (c.segments, c.characters))


def _segments(checks: dict[str, CheckedMessage]) -> dict[str, int]:
    return {zone: c.segments for zone, c in checks.items()}


def _quote_for_order(session: Session, who: Principal, quote_id: str, now: datetime) -> Quote:
    quote = QuoteRepository(session).get(quote_id, who.scope())
    if quote is None:
        raise QuoteNotFound("no such quote in your organisation")
    if quote.expires_at <= now:
        raise QuoteExpired(
            f"the quote expired on {clock.human(quote.expires_at)}: ask for a new quote",
            expired_at=quote.expires_at.isoformat(),
        )
    return quote


def _check_quantity(quote: Quote, quantity: int) -> None:
    k = get_settings().min_segment_size
    if quote.shown_count is None:
        raise SegmentTooSmall(
            f"this segment holds fewer than {k} prospects and cannot be ordered: widen the criteria"
        )
    if not k <= quantity <= quote.shown_count:
        raise QuantityOutOfRange(
            f"quantity must be between {k} (the minimum) and {quote.shown_count} (the quote's "
            "count)",
            minimum=k,
            maximum=quote.shown_count,
        )


def _check_send_at(send_at: datetime, now: datetime) -> None:
    """From now (a client's clock may lag a few minutes; the contract may ask for a delay) to
    the horizon. The message gives the bounds, never the time that was given."""
    s = get_settings()
    delay = timedelta(minutes=s.min_send_delay_minutes)
    earliest, latest = now + delay, now + timedelta(days=s.max_send_horizon_days)
    instant = clock.to_utc(send_at)
    if instant is None or instant < earliest - (clock.SKEW if not delay else timedelta(0)):
        raise InvalidSendTime(
            f"the send time is in the past or too soon: give a time after {clock.human(earliest)}",
            earliest=earliest.isoformat(),
        )
    if instant > latest:
        raise InvalidSendTime(
            f"the send time is more than {s.max_send_horizon_days} days ahead: give a time "
            f"before {clock.human(latest)}, or order closer to the date",
            latest=latest.isoformat(),
        )


def create_order(session: Session, who: Principal, body: OrderCreate) -> Order:
    now = clock.now()
    quote = _quote_for_order(session, who, body.quote_id, now)
    _check_quantity(quote, body.quantity)
    sender = check_sender(body.sender)
    zones = zone_mix_of(quote)
    checks = _messages(body.message)
    worst = _worst(checks, zones)
    _check_send_at(body.send_at, now)
    grid = grid_for(session, quote.organisation_id)
    total = price(grid, body.quantity, zones, _segments(checks))
    org = AccountRepository(session).organisation(quote.organisation_id)
    assert org is not None  # noqa: S101  (foreign key)
    order = OrderRepository(session).add(
        Order(
            id=str(uuid.uuid4()),
            organisation_id=quote.organisation_id,
            user_id=who.user_id,
            quote_id=quote.id,
            status=S.awaiting_deposit,
            quantity=body.quantity,
            message=body.message,
            sender=sender,
            send_at=body.send_at,
            encoding=worst.encoding,
            characters=worst.characters,
            segments=worst.segments,
            grid=grid.model_dump_json(),
            price=total.model_dump_json(),
            content_status="approved" if org.content_review is ContentReview.auto else "pending",
            reserved=0,
            created_at=now,
            updated_at=now,
            version=1,
        )
    )
    repo = OrderRepository(session)
    repo.add_event(
        order.id,
        now,
        who.user_id,
        _actor(who),
        "created",
        None,
        S.awaiting_deposit.value,
        {"quantity": order.quantity, "content_review": org.content_review.value},
    )
    deposit = invoices.issue_deposit(session, order.organisation_id, order.id, total, now)
    repo.add_event(
        order.id,
        now,
        None,
        "system",
        "deposit_invoiced",
        details={"invoice": deposit.number, "amount_incl_vat_cents": deposit.amount_incl_vat_cents},
    )
    return order


def get_order(session: Session, who: Principal, order_id: str) -> Order:
    """An order of the caller's organisation (any for staff); 404 otherwise, so that another
    organisation's order is not even known to exist."""
    order = OrderRepository(session).get(order_id, who.scope())
    if order is None:
        raise OrderNotFound("no such order in your organisation")
    return order


def lock(session: Session, who: Principal, order_id: str) -> Order:
    order = OrderRepository(session).lock(order_id, who.scope())
    if order is None:
        raise OrderNotFound("no such order in your organisation")
    return order


def list_orders(
    session: Session,
    who: Principal,
    *,
    organisation_id: int | None = None,
    status: OrderStatus | None = None,
    content_status: str | None = None,
    cancellation_requested: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Order]:
    org = who.scope(organisation_id)
    return OrderRepository(session).search(
        org,
        status.value if status else None,
        content_status,
        cancellation_requested,
        limit,
        offset,
    )


def _quote_of(session: Session, order: Order) -> Quote:
    quote = QuoteRepository(session).get(order.quote_id, None)
    assert quote is not None  # noqa: S101  (foreign key)
    return quote


def _deposit_paid(session: Session, order: Order) -> bool:
    deposit = invoices.deposit_of(session, order.id)
    return deposit is not None and deposit.status == "paid"


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
    recorded = invoices.record_payment(
        session,
        who,
        order.id,
        reference,
        amount_cents,
        day,
        now,
        closed=order.status is S.cancelled,
    )
    if not recorded.created:
        return recorded
    OrderRepository(session).add_event(
        order.id,
        now,
        who.user_id,
        _actor(who),
        "payment_recorded",
        details={
            "reference": reference,
            "amount_cents": amount_cents,
            "invoice": recorded.invoice.number,
            "invoice_status": recorded.invoice.status,
        },
    )
    if (
        recorded.invoice.kind == invoices.DEPOSIT
        and recorded.invoice.status == "paid"
        and order.status is S.awaiting_deposit
    ):
        flows.confirm(session, order, _quote_of(session, order), seg, now, None, "system")
    return recorded


def approve(session: Session, who: Principal, order_id: str) -> Order:
    now = clock.now()
    order = lock(session, who, order_id)
    if order.content_status == "approved":
        return order  # approving twice changes nothing
    if order.status not in (*REVISABLE, S.on_hold):
        raise OrderLocked(f"the order is {order.status.value}: its content can no longer change")
    order.content_status, order.content_note = "approved", None
    OrderRepository(session).add_event(order.id, now, who.user_id, _actor(who), "content_approved")
    flows.schedule_if_approved(session, order, now, who.user_id, _actor(who))
    return order


def reject(session: Session, who: Principal, order_id: str, reason: str) -> Order:
    now = clock.now()
    order = lock(session, who, order_id)
    if order.status not in (*REVISABLE, S.on_hold):
        raise OrderLocked(
            f"the order is {order.status.value}: put it on hold before rejecting its content",
            current_status=order.status.value,
        )
    order.content_status, order.content_note = "rejected", reason
    OrderRepository(session).add_event(
        order.id, now, who.user_id, _actor(who), "content_rejected", details={"reason": reason}
    )
    return order


def revise(session: Session, who: Principal, order_id: str, body: OrderRevision) -> Order:
    """A new message or sender, before the order is scheduled; back to review if manual."""
    now = clock.now()
    order = lock(session, who, order_id)
    open_review = order.content_status != "approved" and order.status in (S.confirmed, S.on_hold)
    if order.status is not S.awaiting_deposit and not open_review:
        raise OrderLocked(
            f"the order is {order.status.value} with its content "
            f"{order.content_status}: its message can no longer change",
            current_status=order.status.value,
        )
    sender = check_sender(body.sender) if body.sender is not None else order.sender
    text = body.message if body.message is not None else order.message
    if (text, sender) == (order.message, order.sender):
        raise NothingToRevise("the message and the sender are unchanged: give a new one")
    zones = zone_mix_of(_quote_of(session, order))
    checks = _messages(text)
    before = Price.model_validate_json(order.price)
    after = price(
        PriceGrid.model_validate_json(order.grid), order.quantity, zones, _segments(checks)
    )
    if after.total_incl_vat_cents != before.total_incl_vat_cents:
        raise PriceWouldChange(
            f"the new message takes {_worst(checks, zones).segments} SMS segment(s) instead of "
            f"{order.segments}, which changes the price: keep to the same number of segments, "
            "or cancel this order and order again"
        )
    worst = _worst(checks, zones)
    order.message, order.sender = text, sender
    order.encoding, order.characters, order.segments = (
        worst.encoding,
        worst.characters,
        worst.segments,
    )
    org = AccountRepository(session).organisation(order.organisation_id)
    manual = org is not None and org.content_review is ContentReview.manual
    # A rejected message goes back to an account manager whatever the organisation's mode.
    review = manual or order.content_status == "rejected"
    order.content_status = "pending" if review and not who.is_staff else "approved"
    order.content_note = None
    order.updated_at = now
    OrderRepository(session).add_event(
        order.id, now, who.user_id, _actor(who), "message_revised", details={"sender": sender}
    )
    flows.schedule_if_approved(session, order, now, who.user_id, _actor(who))
    return order


def cancel(
    session: Session,
    who: Principal,
    order_id: str,
    reason: str | None,
    refund_deposit: bool | None,
) -> Order:
    """A client cancels an order not yet paid; after that, cancelling is a request that an
    account manager accepts (the deposit is kept unless the contract says otherwise). An order
    held because the segment fell short is cancelled at once with the deposit refunded."""
    now = clock.now()
    order = lock(session, who, order_id)
    check_transition(order.status, S.cancelled)
    repo = OrderRepository(session)
    volume_hold = order.status is S.on_hold and order.hold_kind == "volume"
    paid_anything = any(i.paid_cents > 0 for i in InvoiceRepository(session).of_order(order.id))
    unpaid = not paid_anything and S.awaiting_deposit in (order.status, order.held_from)
    if not who.is_staff and not volume_hold and not unpaid:
        if order.cancel_requested_at is not None:
            raise CancellationAlreadyRequested(
                "a cancellation of this order is already waiting for your account manager"
            )
        order.cancel_requested_at = now
        repo.add_event(
            order.id,
            now,
            who.user_id,
            _actor(who),
            "cancellation_requested",
            details={"reason": reason} if reason else {},
        )
        return order
    if not who.is_staff or refund_deposit is None:
        org = AccountRepository(session).organisation(order.organisation_id)
        refund_deposit = volume_hold or bool(org and org.refund_deposit_on_cancel)
    flows.release(session, order, now)
    notes = invoices.cancel_open(session, order.id, "order cancelled", now)
    deposit = invoices.deposit_of(session, order.id)
    refund = (
        invoices.refund_paid(session, deposit, "order cancelled, deposit refunded", now)
        if refund_deposit and deposit is not None
        else None
    )
    if refund is not None:
        notes.append(refund)
    flows.move(
        session,
        order,
        S.cancelled,
        now,
        who.user_id,
        _actor(who),
        "cancelled",
        reason=reason or "",
        deposit="refunded" if refund is not None else "kept" if paid_anything else "none paid",
        credit_notes=[n.number for n in notes],
    )
    return order


def decline_cancellation(session: Session, who: Principal, order_id: str, reason: str) -> Order:
    """An account manager declines a client's cancellation request: the order stays firm."""
    now = clock.now()
    order = lock(session, who, order_id)
    if order.cancel_requested_at is None or order.status is S.cancelled:
        raise OrderLocked(
            "no cancellation request is waiting on this order", current_status=order.status.value
        )
    order.cancel_requested_at = None
    order.updated_at = now
    OrderRepository(session).add_event(
        order.id, now, who.user_id, _actor(who), "cancellation_declined", details={"reason": reason}
    )
    return order


def request_dispatch(session: Session, who: Principal, order_id: str) -> Order:
    """An account manager sends a scheduled order now rather than at its requested time (the
    legal windows still decide when each recipient receives it). Once only."""
    now = clock.now()
    order = lock(session, who, order_id)
    check_transition(order.status, S.dispatching)  # a 409 naming the state unless scheduled
    if order.dispatch_requested_at is not None:
        raise OrderLocked(
            "dispatch was already requested for this order: it is sent once",
            current_status=order.status.value,
        )
    order.dispatch_requested_at = now
    before = order.send_at
    order.send_at = min(order.send_at, now)
    OrderRepository(session).add_event(
        order.id,
        now,
        who.user_id,
        _actor(who),
        "dispatch_requested",
        details={"requested_send_at": before.isoformat()},
    )
    return order


def hold(session: Session, who: Principal, order_id: str, reason: str) -> Order:
    now = clock.now()
    order = lock(session, who, order_id)
    if order.status not in (S.awaiting_deposit, S.confirmed, S.scheduled):
        check_transition(order.status, S.on_hold)  # names the state in the 409
        raise OrderLocked(
            f"the order is {order.status.value}: only an order not yet sending can be held",
            current_status=order.status.value,
        )
    order.held_from, order.hold_kind, order.hold_reason = order.status, "manual", reason
    flows.move(session, order, S.on_hold, now, who.user_id, _actor(who), "held", reason=reason)
    return order


def release_hold(session: Session, who: Principal, order_id: str, seg: Segmenter) -> Order:
    """Back to where the order was. An order whose deposit was paid while it was held, or held
    because the segment fell short, is drawn again (the segment may have grown since)."""
    now = clock.now()
    order = lock(session, who, order_id)
    if order.status is not S.on_hold:
        raise InvalidTransition(
            f"the order is {order.status.value}, not on hold: there is nothing to release",
            current_status=order.status.value,
        )
    kind, target = order.hold_kind, order.held_from or S.confirmed
    if target is S.scheduled and order.content_status != "approved":
        target = S.confirmed  # its content was rejected while held: not ready to send
    order.hold_kind = order.hold_reason = order.held_from = None
    redraw = kind == "volume" or (target is S.awaiting_deposit and _deposit_paid(session, order))
    if redraw:
        OrderRepository(session).add_event(order.id, now, who.user_id, _actor(who), "released")
        flows.confirm(session, order, _quote_of(session, order), seg, now, who.user_id, _actor(who))
        return order
    flows.move(session, order, target, now, who.user_id, _actor(who), "released")
    flows.schedule_if_approved(session, order, now, who.user_id, _actor(who))
    return order


def accept_volume(session: Session, who: Principal, order_id: str) -> Order:
    """On hold because the segment fell short: the customer takes the offered quantity,
    re-priced; the deposit already paid counts towards the new total."""
    now = clock.now()
    order = lock(session, who, order_id)
    if order.status is not S.on_hold or order.hold_kind != "volume":
        raise OrderLocked(
            "only an order held because its segment fell short can take a lower volume",
            current_status=order.status.value,
        )
    if order.reserved < get_settings().min_segment_size:
        raise OrderLocked(
            "no quantity can be offered for this order: cancel it and the deposit is refunded",
            current_status=order.status.value,
        )
    before = order.quantity
    new_price = reprice(session, order, order.reserved)
    order.quantity, order.price = order.reserved, new_price.model_dump_json()
    order.hold_kind = order.hold_reason = order.held_from = None
    flows.move(
        session,
        order,
        S.confirmed,
        now,
        who.user_id,
        _actor(who),
        "volume_accepted",
        quantity_before=before,
        quantity=order.quantity,
        total_incl_vat_cents=new_price.total_incl_vat_cents,
    )
    flows.schedule_if_approved(session, order, now, who.user_id, _actor(who))
    return order


def reprice(session: Session, order: Order, quantity: int) -> Price:
    """The order's price for another quantity: same grid, zone mix and message."""
    zones = zone_mix_of(_quote_of(session, order))
    grid = PriceGrid.model_validate_json(order.grid)
    return price(grid, quantity, zones, _segments(_messages(order.message)))


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
            "system",
            "balance_invoiced" if invoice.kind == invoices.BALANCE else "credit_note_issued",
            details={
                "invoice": invoice.number,
                "sent": sent,
                "amount_incl_vat_cents": invoice.amount_incl_vat_cents,
            },
        )
    return invoice


# Views -------------------------------------------------------------------------------------


def _amount(excl: int, vat: int) -> Amount:
    return Amount(amount_excl_vat_cents=excl, vat_cents=vat, amount_incl_vat_cents=excl + vat)


def _by(event_actor: str, user_name: str | None, viewer: Principal, same_org: bool) -> str:
    if event_actor == "system":
        return "system"
    if event_actor in (Role.account_manager.value, Role.admin.value):
        return "account manager" if not viewer.is_staff else f"account manager {user_name}"
    return user_name if (same_org or viewer.is_staff) and user_name else "client"


# Event details for the broker's staff only: a carrier's error says how the broker's sending
# is set up (an SMSC's address, a refused bind).
STAFF_DETAILS = ("last_error",)


def _event_details(raw: str, viewer: Principal) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(raw)
    if not viewer.is_staff:
        for key in STAFF_DETAILS:
            details.pop(key, None)
    return details


def view(session: Session, order: Order, who: Principal) -> OrderOut:
    s = get_settings()
    repo = OrderRepository(session)
    events = repo.events(order.id)
    users = AccountRepository(session).users({e.user_id for e in events if e.user_id})
    quote = _quote_of(session, order)
    zones = zone_mix_of(quote)
    checks = _messages(order.message)
    worst = _worst(checks, zones)
    p = Price.model_validate_json(order.price)
    deposit_invoice = invoices.deposit_of(session, order.id)
    invoice_ids = [i.id for i in InvoiceRepository(session).of_order(order.id)]
    per = GSM_MULTI if worst.encoding == "GSM-7" else UCS2_MULTI
    note = (
        f"{worst.encoding}: {worst.characters} characters with the STOP and source mentions, "
        f"{worst.segments} SMS segment(s) per message; transport is billed per segment"
        + ("" if worst.segments == 1 else f" (concatenated parts hold {per} characters)")
        + (
            ". One character outside the GSM alphabet makes the whole message UCS-2, "
            f"{UCS2_SINGLE} characters per segment"
            if worst.encoding == "UCS-2"
            else ""
        )
    )
    fields = dict(
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
        message_check=MessageCheck(
            encoding=worst.encoding,
            characters=worst.characters,
            segments=worst.segments,
            max_segments=s.max_segments,
            by_zone={
                z: {"encoding": c.encoding, "characters": c.characters, "segments": c.segments}
                for z, c in checks.items()
            },
            preview=worst.full_text,
            note=note,
        ),
        price=p,
        total=_amount(p.total_excl_vat_cents, p.vat_cents),
        deposit=_amount(
            deposit_invoice.amount_excl_vat_cents if deposit_invoice else 0,
            deposit_invoice.vat_cents if deposit_invoice else 0,
        ),
        deposit_paid=deposit_invoice is not None and deposit_invoice.status == "paid",
        content_review=ContentReviewOut(status=order.content_status, note=order.content_note),
        reservation=(
            "short" if order.hold_kind == "volume" else "complete" if order.reserved > 0 else "none"
        ),
        hold_reason=order.hold_reason,
        offered_quantity=(
            order.reserved
            if order.hold_kind == "volume" and order.reserved >= s.min_segment_size
            else None
        ),
        cancellation_requested=order.cancel_requested_at is not None
        and order.status is not S.cancelled,
        invoices=invoice_ids,
        created_at=order.created_at,
        events=[
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
                details=_event_details(e.details, who),
            )
            for e in events
        ],
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
