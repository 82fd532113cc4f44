"""The send plan a customer sees: one wave per calendar (time zone and holidays) that the
order's criteria can reach, with when it starts and ends and how many recipients it holds,
small and empty ones suppressed alike: the list tells nothing by its shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from dispatch import windows
from dispatch.repository import LedgerRepository
from dispatch.states import UNSENT, WaveStatus
from kit.settings import get_settings
from sales.orders.access import quote_of
from sales.orders.models import Order
from sales.orders.states import OrderStatus
from segmentation import privacy, reach
from segmentation.criteria import Criteria


class Wave(BaseModel):
    calendar: str
    time_zone: str
    starts_at: datetime | None = Field(description="the next opening of the window; None: done")
    ends_at: datetime | None = Field(description="when that window closes")
    recipients: int | None = Field(description="null when under the minimum count")
    status: str = Field(description="planned, waiting (window closed), sending or done")


T = TypeVar("T")


@dataclass(frozen=True)
class ShownWaves:
    """The waves of an order (one per calendar its criteria reach) as a customer sees them, in
    the send plan and in the report. A wave of fewer than k recipients is hidden, with others
    so that the order's total does not give it away (the rule of segmentation.privacy). An
    empty wave is hidden and protected as a small one would be: were it shown as empty, or
    the others shown in full beside it, the pattern would tell the empty calendar from a
    small one, i.e. whether anyone of the order lives there. A hidden wave tells nothing of
    its own either: its progress or its times would tell when its few people were sent."""

    recipients: dict[str, int | None]  # per calendar; None: hidden

    @classmethod
    def of(cls, counts: Mapping[str, int], k: int) -> ShownWaves:
        """`counts`: every listed calendar, the empty ones at 0."""
        return cls(privacy.suppress_possible(counts, k, counts))

    def hidden(self) -> set[str]:
        return {c for c, n in self.recipients.items() if n is None}

    def own(self, calendar: str, value: T, hidden: T) -> T:
        """What the wave tells of itself: its own `value` when it is shown; when it is hidden,
        `hidden`, which must tell nothing of its few people (the order's as a whole, or
        nothing)."""
        return value if self.recipients[calendar] is not None else hidden


def _suppress(counts: dict[str, int], k: int) -> dict[str, int | None]:
    """The waves' recipients as shown (see ShownWaves)."""
    return ShownWaves.of(counts, k).recipients


def reachable(criteria: Criteria) -> set[str]:
    """The calendars (wave keys) the criteria can reach."""
    return {windows.calendar_of(d).key for d in reach.departments(criteria)}


def listed(session: Session, order: Order, counts: Iterable[str] = ()) -> list[str]:
    """The waves an order lists: every calendar its criteria can reach, whoever is in it (and
    any calendar holding recipients, should the base have moved them: never a wave lost)."""
    criteria = Criteria.model_validate(quote_of(session, order).criteria)
    return sorted(reachable(criteria) | set(counts))


def shown_of(session: Session, order: Order, counts: Mapping[str, int], k: int) -> ShownWaves:
    """The order's waves as shown, from its recipients per calendar (0 for the calendars its
    criteria reach where nobody is)."""
    return ShownWaves.of({c: counts.get(c, 0) for c in listed(session, order, counts)}, k)


def for_order(session: Session, order: Order, now: datetime) -> list[Wave]:
    """The send plan: once recipients are drawn (the reservation's plan, then the ledger),
    one wave per calendar the criteria reach. A hidden wave (small or empty) follows the
    order as a whole."""
    k = get_settings().privacy.min_segment_size
    ledger = LedgerRepository(session)
    by_calendar: dict[str, int] = {}
    left: dict[str, int] = {}
    if ledger.has_ledger(order.id):
        for name, status, n in ledger.counts_by_calendar(order.id):
            by_calendar[name] = by_calendar.get(name, 0) + n
            if status in UNSENT:
                left[name] = left.get(name, 0) + n
    elif order.plan and order.status in (
        OrderStatus.confirmed,
        OrderStatus.scheduled,
        OrderStatus.on_hold,
    ):
        for dep, n in order.plan.items():
            key = windows.calendar_of(dep).key
            by_calendar[key] = by_calendar.get(key, 0) + int(n)
            left[key] = left.get(key, 0) + int(n)
    if not by_calendar:
        return []  # nobody drawn (yet): no plan to show
    shown = shown_of(session, order, by_calendar, k)
    start_from = max(order.send_at, now)
    out = []
    for key in shown.recipients:
        cal = windows.calendar_from_key(key)
        pending = shown.own(key, left.get(key), hidden=sum(left.values()))
        if not pending:
            out.append(
                Wave(
                    calendar=key,
                    time_zone=cal.time_zone,
                    starts_at=None,
                    ends_at=None,
                    recipients=shown.recipients[key],
                    status=WaveStatus.done,
                )
            )
            continue
        opens = windows.next_opening(cal, start_from)
        status = WaveStatus.planned
        if order.status is OrderStatus.dispatching:
            status = WaveStatus.sending if windows.is_open(cal, now) else WaveStatus.waiting
        out.append(
            Wave(
                calendar=key,
                time_zone=cal.time_zone,
                starts_at=opens,
                ends_at=windows.closing(cal, opens),
                recipients=shown.recipients[key],
                status=status,
            )
        )
    return out
