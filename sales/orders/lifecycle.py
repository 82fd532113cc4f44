"""The commands of an order's life: place it, review its content, revise its message, cancel
it (or ask to), send it now, hold it and release it, take a lower volume.

Services never commit. Each command locks the order first (`access.lock`) and moves it only
through `flows.move`, which checks the state machine (`states`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from kit import clock
from kit.settings import get_settings
from sales.accounts.models import ContentReview
from sales.accounts.repository import AccountRepository
from sales.accounts.schemas import Principal
from sales.exclusions import service as exclusions
from sales.invoices import service as invoices
from sales.invoices.repository import InvoiceRepository
from sales.messages.service import (
    CheckedMessage,
    check_by_zone,
    check_sender,
    segments_by_zone,
    worst_case,
)
from sales.orders import flows
from sales.orders.access import actor, lock, quote_of
from sales.orders.exceptions import (
    CancellationAlreadyRequested,
    InvalidSendTime,
    NothingToRevise,
    OrderLocked,
    PriceWouldChange,
    QuantityOutOfRange,
    SegmentTooSmall,
)
from sales.orders.models import Order
from sales.orders.payments import deposit_paid, reprice
from sales.orders.repository import OrderRepository
from sales.orders.schemas import OrderCreate, OrderRevision
from sales.orders.states import (
    SYSTEM,
    ContentStatus,
    HoldKind,
    InvalidTransition,
    OrderAction,
    OrderStatus,
    check_transition,
)
from sales.pricing.schemas import Price, PriceGrid
from sales.pricing.service import grid_for, price
from sales.quotes.exceptions import QuoteExpired, QuoteNotFound
from sales.quotes.models import Quote
from sales.quotes.repository import QuoteRepository
from segmentation.runtime import Segmenter

S, A, C = OrderStatus, OrderAction, ContentStatus
# Where an order's content review may still change.
REVISABLE = (S.awaiting_deposit, S.confirmed)


# Placing an order ------------------------------------------------------------------------


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
    k = get_settings().privacy.min_segment_size
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
    delay = timedelta(minutes=s.terms.min_send_delay_minutes)
    earliest, latest = now + delay, now + timedelta(days=s.terms.max_send_horizon_days)
    instant = clock.to_utc(send_at)
    if instant is None or instant < earliest - (clock.SKEW if not delay else timedelta(0)):
        raise InvalidSendTime(
            f"the send time is in the past or too soon: give a time after {clock.human(earliest)}",
            earliest=earliest.isoformat(),
        )
    if instant > latest:
        raise InvalidSendTime(
            f"the send time is more than {s.terms.max_send_horizon_days} days ahead: give a time "
            f"before {clock.human(latest)}, or order closer to the date",
            latest=latest.isoformat(),
        )


@dataclass(frozen=True)
class CheckedOrder:
    """An order as it would be placed: its quote, checked message (the worst zone's form) and
    price. What the web page's summary shows is what `create_order` then places."""

    quote: Quote
    sender: str
    worst: CheckedMessage
    grid: PriceGrid
    total: Price


def check_order(session: Session, who: Principal, body: OrderCreate, now: datetime) -> CheckedOrder:
    """Every check of placing an order, and its price, without placing it."""
    quote = _quote_for_order(session, who, body.quote_id, now)
    exclusions.check_quoted_files(session, quote.criteria.get("exclusion_files"))
    _check_quantity(quote, body.quantity)
    sender = check_sender(body.sender)
    checks = check_by_zone(body.message)
    worst = worst_case(checks, quote.zone_mix)
    _check_send_at(body.send_at, now)
    grid = grid_for(session, quote.organisation_id)
    total = price(grid, body.quantity, quote.zone_mix, segments_by_zone(checks))
    return CheckedOrder(quote, sender, worst, grid, total)


def create_order(session: Session, who: Principal, body: OrderCreate) -> Order:
    """An order from a quote: quantity, sender, message and send time checked, priced with the
    organisation's grid, and its 30% deposit invoiced."""
    now = clock.now()
    checked = check_order(session, who, body, now)
    quote, sender, worst, grid, total = (
        checked.quote,
        checked.sender,
        checked.worst,
        checked.grid,
        checked.total,
    )
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
            grid=grid,
            price=total,
            content_status=C.approved if org.content_review is ContentReview.auto else C.pending,
            reserved=0,
            created_at=now,
            updated_at=now,
            version=1,
        )
    )
    _record_placed(session, who, order, org.content_review, total, now)
    return order


def _record_placed(
    session: Session,
    who: Principal,
    order: Order,
    review: ContentReview,
    total: Price,
    now: datetime,
) -> None:
    """The new order's history, and its deposit invoice."""
    repo = OrderRepository(session)
    repo.add_event(
        order.id,
        now,
        who.user_id,
        actor(who),
        A.created,
        None,
        S.awaiting_deposit.value,
        {"quantity": order.quantity, "content_review": review.value},
    )
    deposit = invoices.issue_deposit(session, order.organisation_id, order.id, total, now)
    repo.add_event(
        order.id,
        now,
        None,
        SYSTEM,
        A.deposit_invoiced,
        details={"invoice": deposit.number, "amount_incl_vat_cents": deposit.amount_incl_vat_cents},
    )


# Its content -----------------------------------------------------------------------------


def approve(session: Session, who: Principal, order_id: str) -> Order:
    now = clock.now()
    order = lock(session, who, order_id)
    if order.content_status == C.approved:
        return order  # approving twice changes nothing
    if order.status not in (*REVISABLE, S.on_hold):
        raise OrderLocked(f"the order is {order.status.value}: its content can no longer change")
    order.content_status, order.content_note = C.approved, None
    OrderRepository(session).add_event(order.id, now, who.user_id, actor(who), A.content_approved)
    flows.schedule_if_approved(session, order, now, who.user_id, actor(who))
    return order


def reject(session: Session, who: Principal, order_id: str, reason: str) -> Order:
    now = clock.now()
    order = lock(session, who, order_id)
    if order.status not in (*REVISABLE, S.on_hold):
        raise OrderLocked(
            f"the order is {order.status.value}: put it on hold before rejecting its content",
            current_status=order.status.value,
        )
    order.content_status, order.content_note = C.rejected, reason
    OrderRepository(session).add_event(
        order.id, now, who.user_id, actor(who), A.content_rejected, details={"reason": reason}
    )
    return order


def revise(session: Session, who: Principal, order_id: str, body: OrderRevision) -> Order:
    """A new message or sender, before the order is scheduled; back to review if manual."""
    now = clock.now()
    order = lock(session, who, order_id)
    open_review = order.content_status != C.approved and order.status in (S.confirmed, S.on_hold)
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
    zones = quote_of(session, order).zone_mix
    checks = check_by_zone(text)
    worst = worst_case(checks, zones)
    after = price(order.grid, order.quantity, zones, segments_by_zone(checks))
    if after.total_incl_vat_cents != order.price.total_incl_vat_cents:
        raise PriceWouldChange(
            f"the new message takes {worst.segments} SMS segment(s) instead of "
            f"{order.segments}, which changes the price: keep to the same number of segments, "
            "or cancel this order and order again"
        )
    order.message, order.sender = text, sender
    order.encoding, order.characters, order.segments = (
        worst.encoding,
        worst.characters,
        worst.segments,
    )
    org = AccountRepository(session).organisation(order.organisation_id)
    manual = org is not None and org.content_review is ContentReview.manual
    # A rejected message goes back to an account manager whatever the organisation's mode.
    review = manual or order.content_status == C.rejected
    order.content_status = C.pending if review and not who.is_staff else C.approved
    order.content_note = None
    order.updated_at = now
    OrderRepository(session).add_event(
        order.id, now, who.user_id, actor(who), A.message_revised, details={"sender": sender}
    )
    flows.schedule_if_approved(session, order, now, who.user_id, actor(who))
    return order


# Cancelling ------------------------------------------------------------------------------


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
    volume_hold = order.status is S.on_hold and order.hold_kind == HoldKind.volume
    paid_anything = any(i.paid_cents > 0 for i in InvoiceRepository(session).of_order(order.id))
    unpaid = not paid_anything and S.awaiting_deposit in (order.status, order.held_from)
    if not who.is_staff and not volume_hold and not unpaid:
        _request_cancellation(session, who, order, reason, now)
        return order
    if not who.is_staff or refund_deposit is None:
        org = AccountRepository(session).organisation(order.organisation_id)
        refund_deposit = volume_hold or bool(org and org.refund_deposit_on_cancel)
    _cancel_now(session, who, order, reason, refund_deposit, paid_anything, now)
    return order


def _request_cancellation(
    session: Session, who: Principal, order: Order, reason: str | None, now: datetime
) -> None:
    """A client's cancellation of an order already paid (in part): for an account manager."""
    if order.cancel_requested_at is not None:
        raise CancellationAlreadyRequested(
            "a cancellation of this order is already waiting for your account manager"
        )
    order.cancel_requested_at = now
    OrderRepository(session).add_event(
        order.id,
        now,
        who.user_id,
        actor(who),
        A.cancellation_requested,
        details={"reason": reason} if reason else {},
    )


def _cancel_now(
    session: Session,
    who: Principal,
    order: Order,
    reason: str | None,
    refund_deposit: bool,
    paid_anything: bool,
    now: datetime,
) -> None:
    """Release the recipients, cancel what is still due (credit notes), refund the deposit
    when asked, and cancel the order."""
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
        actor(who),
        A.cancelled,
        reason=reason or "",
        deposit="refunded" if refund is not None else "kept" if paid_anything else "none paid",
        credit_notes=[n.number for n in notes],
    )


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
        order.id, now, who.user_id, actor(who), A.cancellation_declined, details={"reason": reason}
    )
    return order


# Sending now, holding --------------------------------------------------------------------


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
        actor(who),
        A.dispatch_requested,
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
    order.held_from, order.hold_kind, order.hold_reason = order.status, HoldKind.manual, reason
    flows.move(session, order, S.on_hold, now, who.user_id, actor(who), A.held, reason=reason)
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
    if target is S.scheduled and order.content_status != C.approved:
        target = S.confirmed  # its content was rejected while held: not ready to send
    order.hold_kind = order.hold_reason = order.held_from = None
    redraw = kind == HoldKind.volume or (
        target is S.awaiting_deposit and deposit_paid(session, order)
    )
    if redraw:
        OrderRepository(session).add_event(order.id, now, who.user_id, actor(who), A.released)
        flows.confirm(session, order, quote_of(session, order), seg, now, who.user_id, actor(who))
        return order
    flows.move(session, order, target, now, who.user_id, actor(who), A.released)
    flows.schedule_if_approved(session, order, now, who.user_id, actor(who))
    return order


def accept_volume(session: Session, who: Principal, order_id: str) -> Order:
    """On hold because the segment fell short: the customer takes the offered quantity,
    re-priced; the deposit already paid counts towards the new total."""
    now = clock.now()
    order = lock(session, who, order_id)
    if order.status is not S.on_hold or order.hold_kind != HoldKind.volume:
        raise OrderLocked(
            "only an order held because its segment fell short can take a lower volume",
            current_status=order.status.value,
        )
    if order.reserved < get_settings().privacy.min_segment_size:
        raise OrderLocked(
            "no quantity can be offered for this order: cancel it and the deposit is refunded",
            current_status=order.status.value,
        )
    before = order.quantity
    new_price = reprice(session, order, order.reserved)
    order.quantity, order.price = order.reserved, new_price
    order.hold_kind = order.hold_reason = order.held_from = None
    flows.move(
        session,
        order,
        S.confirmed,
        now,
        who.user_id,
        actor(who),
        A.volume_accepted,
        quantity_before=before,
        quantity=order.quantity,
        total_incl_vat_cents=new_price.total_incl_vat_cents,
    )
    flows.schedule_if_approved(session, order, now, who.user_id, actor(who))
    return order
