"""The send plan a customer sees: one wave per recipients' calendar (time zone and holidays),
with when it starts and ends and how many recipients it holds, small ones suppressed."""

from __future__ import annotations

import json
from datetime import datetime

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


def _suppress(counts: dict[str, int], k: int) -> dict[str, int | None]:
    """Counts under k hidden, with complementary cells (the rule of segmentation.privacy)."""
    return privacy.suppress_counts(counts, k)


def for_order(session: Session, order: Order, now: datetime) -> list[Wave]:
    k = get_settings().min_segment_size
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
        for dep, n in json.loads(order.plan).items():
            key = windows.calendar_of(dep).key
            by_calendar[key] = by_calendar.get(key, 0) + int(n)
            left[key] = left.get(key, 0) + int(n)
    shown = _suppress(by_calendar, k)
    start_from = max(order.send_at, now)
    out = []
    for key in sorted(by_calendar):
        cal = windows.calendar_from_key(key)
        # A hidden wave follows the order as a whole: its own progress would tell that its
        # few people were sent.
        pending = left.get(key) if shown[key] is not None else sum(left.values())
        if not pending:
            out.append(
                Wave(
                    calendar=key,
                    time_zone=cal.time_zone,
                    starts_at=None,
                    ends_at=None,
                    recipients=shown[key],
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
                recipients=shown[key],
                status=status,
            )
        )
    return out
