"""The send plan a customer sees: one wave per recipients' calendar (time zone and holidays),
with when it starts and ends and how many recipients it holds, small ones suppressed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from dispatch import windows
from dispatch.repository import LedgerRepository
from dispatch.states import UNSENT, WaveStatus
from kit.settings import get_settings
from sales.orders.models import Order
from sales.orders.states import OrderStatus
from segmentation import privacy


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
    """The waves of an order (one per calendar) as a customer sees them, in the send plan and
    in the report. A wave of fewer than k recipients is hidden, with others so that the order's
    total does not give it away (the rule of segmentation.privacy). A hidden wave tells nothing
    of its own either: its progress or its times would tell when its few people were sent."""

    recipients: dict[str, int | None]  # per calendar; None: hidden

    @classmethod
    def of(cls, counts: Mapping[str, int], k: int) -> ShownWaves:
        return cls(privacy.suppress_counts(counts, k))

    def own(self, calendar: str, value: T, hidden: T) -> T:
        """What the wave tells of itself: its own `value` when it is shown; when it is hidden,
        `hidden`, which must tell nothing of its few people (the order's as a whole, or
        nothing)."""
        return value if self.recipients[calendar] is not None else hidden


def _suppress(counts: dict[str, int], k: int) -> dict[str, int | None]:
    """The waves' recipients as shown (see ShownWaves)."""
    return ShownWaves.of(counts, k).recipients


def for_order(session: Session, order: Order, now: datetime) -> list[Wave]:
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
    shown = ShownWaves.of(by_calendar, k)
    start_from = max(order.send_at, now)
    out = []
    for key in sorted(by_calendar):
        cal = windows.calendar_from_key(key)
        # A hidden wave follows the order as a whole.
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
