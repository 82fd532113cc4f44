"""Multi-step side effects of the lifecycle: confirm (draw -> reserve -> confirm -> schedule),
and release the reservation. The caller holds the order's lock and owns the transaction."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from datasets import snapshot
from kit import locks
from kit.settings import get_settings
from sales.orders import announce
from sales.orders.exceptions import StaleSnapshot
from sales.orders.models import Order
from sales.orders.repository import OrderRepository
from sales.orders.states import (
    ContentStatus,
    HoldKind,
    OrderAction,
    OrderStatus,
    check_transition,
)
from sales.quotes.models import Quote
from segmentation import privacy
from segmentation.criteria import Criteria
from segmentation.repository import ReservationRepository
from segmentation.runtime import Segmenter

RESERVATIONS_LOCK = "reservations"
# The newest base snapshot any process drew from (its number), kept in the shared database so
# that a host with an older copy of the base refuses to draw instead of drawing from it.
NEWEST_DRAWN = "snapshot:newest_drawn"
S = OrderStatus


def move(
    session: Session,
    order: Order,
    target: OrderStatus,
    now: datetime,
    user_id: int | None,
    actor: str,
    action: str,
    **details: object,
) -> None:
    """The one way an order changes state: checked against the state machine, recorded."""
    check_transition(order.status, target)
    before = order.status
    order.status = target
    order.updated_at = now
    OrderRepository(session).add_event(
        order.id, now, user_id, actor, action, before.value, target.value, dict(details)
    )
    announce.moved(session, order, before, now)  # webhooks: in this same transaction


def minimum_volume(quantity: int) -> int:
    """The 10% promise: below this many recipients nothing is sent."""
    return math.ceil(quantity * (1 - get_settings().terms.volume_tolerance))


def offered_volume(drawn: np.ndarray, sample: privacy.PersonSample) -> int:
    """What can be offered instead when the segment falls short: the drawn set's count as a
    quote would show it (its people's weights, rounded, nothing under the minimum), never more
    than was drawn, always a round figure. A short draw does not tell the segment's exact
    size."""
    s = get_settings()
    shown = privacy.shown_count(
        len(drawn), sample.sampled(drawn), s.privacy.min_segment_size, sample.rate
    )
    if shown is None:
        return 0
    step = privacy.step_for(shown)
    return min(shown, len(drawn) // step * step)  # weighted above: still a round figure


def schedule_if_approved(
    session: Session, order: Order, now: datetime, user_id: int | None, actor: str
) -> None:
    if order.status is S.confirmed and order.content_status == ContentStatus.approved:
        move(session, order, S.scheduled, now, user_id, actor, OrderAction.scheduled)


def draw(
    session: Session,
    order: Order,
    quote: Quote,
    seg: Segmenter,
    now: datetime,
    user_id: int | None,
    actor: str,
) -> np.ndarray | None:
    """Draw the order's recipients afresh and reserve them: the deterministic sample of the
    segment as a quote sees it now, minus what other orders hold for a send at the order's
    send time (`Eligibility.reserved_for`, the quote's rule too). A draw short of the quantity
    is cut to its offered volume (`offered_volume`) first. Returns the ids, or None when that
    is under 90% of the quantity: the order is then held with it as the offered quantity
    (reserved) for the customer to accept.

    Runs under one database-wide lock, taken before the draw reads the reservations of other
    orders: two draws never reserve the same prospect, whichever process runs them. Used at
    confirmation and again at send time (re-validation and top-up)."""
    locks.acquire(session, RESERVATIONS_LOCK)
    _check_snapshot(session, quote, seg)
    s = get_settings()
    send_at = max(order.send_at, now)  # paid after the requested time: as soon as can be
    # The sample leaves out what a quote now leaves out (reservations for a send now among
    # them), and `busy` what is held around our own send time: never more than a quote shows.
    # Our own reservation leaves no one out (a re-draw finds the same people again, and only
    # the difference is written).
    busy = seg.eligibility.reserved_for(session, send_at, now, s.eligibility, leave_out=order.id)
    criteria = Criteria.model_validate(quote.criteria)
    drawn = seg.sample(
        session, criteria, order.quantity, order.id, now, exclude=busy, leave_out=order.id
    )
    if len(drawn) < order.quantity:
        # The segment is exhausted: `drawn` is all of it, and its exact size would show in
        # what is sent, reported and billed (two orders on A and A minus T would tell |T|).
        # Whether it is then sent or held, only its count as a quote shows it goes on.
        offered = offered_volume(drawn, seg.engine.person_sample)
        if offered < s.privacy.min_segment_size:  # no count under the minimum
            offered = 0
        drawn = drawn[:offered]
    order.reserved = ReservationRepository(session).replace(order.id, drawn, send_at, now)
    order.plan = seg.engine.departments_of(drawn)
    if len(drawn) >= minimum_volume(order.quantity):
        return drawn
    _hold_short(session, order, len(drawn), now, user_id, actor)
    return None


def _check_snapshot(session: Session, quote: Quote, seg: Segmenter) -> None:
    """Refuse to draw from a base older than the quote's or than one already drawn from on
    another host: its removals (people gone from the base) would come back. Under the
    reservations lock, so the mark only grows."""
    mine = snapshot.version_number(seg.version)
    newest = max(
        snapshot.version_number(quote.snapshot_version),
        locks.current_value(session, NEWEST_DRAWN),
    )
    if mine < newest:
        raise StaleSnapshot(
            f"this host's base snapshot is {seg.version}, older than "
            f"{snapshot.version_name(newest)} already used by the service (quote "
            f"{quote.id} was counted on {quote.snapshot_version}): copy the newer snapshot into "
            "this host's base directory (RENTAL_HOME/base, docs/deploy.md) and try again; "
            "nothing was drawn or recorded",
            host_snapshot=seg.version,
            required_snapshot=snapshot.version_name(newest),
        )
    locks.raise_to(session, NEWEST_DRAWN, mine)


def _hold_short(
    session: Session,
    order: Order,
    offered: int,
    now: datetime,
    user_id: int | None,
    actor: str,
) -> None:
    """Fewer than 90% of the quantity could be drawn: the order waits on hold, `offered` (its
    reservation) for the customer to accept, or to cancel with the deposit refunded."""
    order.hold_kind = HoldKind.volume
    order.hold_reason = (
        "the segment no longer holds 90% of the ordered quantity: accept the offered "
        "quantity (re-priced) or cancel with the deposit refunded"
    )
    order.held_from = S.confirmed
    if order.status is S.on_hold:  # drawn again and still short
        OrderRepository(session).add_event(
            order.id,
            now,
            user_id,
            actor,
            OrderAction.redrawn,
            details={"offered_quantity": offered},
        )
        return
    move(
        session,
        order,
        S.on_hold,
        now,
        user_id,
        actor,
        OrderAction.held,
        reason="insufficient_volume",
        offered_quantity=offered,
    )


def confirm(
    session: Session,
    order: Order,
    quote: Quote,
    seg: Segmenter,
    now: datetime,
    user_id: int | None,
    actor: str,
) -> None:
    """The deposit is paid: draw and reserve the recipients, then confirm the order (and
    schedule it when its content is approved), or hold it when the segment fell short."""
    check_transition(order.status, S.confirmed)
    if draw(session, order, quote, seg, now, user_id, actor) is None:
        return
    move(
        session,
        order,
        S.confirmed,
        now,
        user_id,
        actor,
        OrderAction.confirmed,
        reservation="complete",
    )
    schedule_if_approved(session, order, now, user_id, actor)


def release(session: Session, order: Order, now: datetime) -> None:
    ReservationRepository(session).release(order.id, now)
    order.reserved = 0
    order.plan = None
