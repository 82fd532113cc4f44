"""All SQL of the reports: aggregates over an order's ledger, never a row of it. Values are
bound; the caller owns the transaction. The only per-recipient column read is the prospect id,
to join the base's attributes (age band) in memory; it never leaves reports/build.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from dispatch.models import Recipient
from rental.orders.models import Order
from segmentation.models import Suppression

CUSTOMER = Recipient.prospect_id >= 0  # control numbers have negative ids
CONTROL = Recipient.prospect_id < 0


@dataclass(frozen=True)
class OutcomeRow:
    status: str
    error: str | None
    late: bool  # its receipt came after the report's cutoff
    n: int


@dataclass(frozen=True)
class CalendarSpan:
    calendar: str
    recipients: int
    first: datetime | None
    last: datetime | None


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates (min, max) bypass the column type: SQLite hands back naive UTC."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns MIN/MAX of a datetime column as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ReportRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _epoch(self, column: Any) -> ColumnElement[int]:
        """Seconds since 1970 of a timestamp column, on SQLite and PostgreSQL."""
        if self.session.get_bind().dialect.name == "sqlite":
            return cast(func.strftime("%s", column), Integer)
        return cast(func.floor(func.extract("epoch", column)), Integer)

    def outcomes(
        self, order_id: str, cutoff: datetime | None, controls: bool = False
    ) -> list[OutcomeRow]:
        """Recipients per status and error; with a cutoff, receipts that came after it are
        flagged (the final report is the state at the cutoff)."""
        late: ColumnElement[int] = cast(0, Integer)
        if cutoff is not None:
            late = case((Recipient.final_at > cutoff, 1), else_=0)
        q = (
            select(Recipient.status, Recipient.error, late, func.count())
            .where(Recipient.order_id == order_id, CONTROL if controls else CUSTOMER)
            .group_by(Recipient.status, Recipient.error, late)
        )
        return [
            OutcomeRow(str(s), str(e) if e is not None else None, bool(lt), int(n))
            for s, e, lt, n in self.session.execute(q)
        ]

    def segments(self, order_id: str) -> int:
        """SMS segments handed to the carrier for the order's own recipients."""
        q = select(func.coalesce(func.sum(Recipient.parts), 0)).where(
            Recipient.order_id == order_id, CUSTOMER, Recipient.submitted_at.is_not(None)
        )
        return int(self.session.scalar(q) or 0)

    def by_department_sex(self, order_id: str) -> list[tuple[str, str, int]]:
        q = (
            select(Recipient.department, Recipient.sex, func.count())
            .where(Recipient.order_id == order_id, CUSTOMER)
            .group_by(Recipient.department, Recipient.sex)
        )
        return [(str(d), str(s), int(n)) for d, s, n in self.session.execute(q)]

    def prospect_ids(self, order_id: str) -> np.ndarray:
        """The order's own recipients' ids, to join the base's attributes. Internal only."""
        q = select(Recipient.prospect_id).where(Recipient.order_id == order_id, CUSTOMER)
        return np.fromiter((r[0] for r in self.session.execute(q)), dtype=np.int64)

    def calendars(self, order_id: str) -> list[CalendarSpan]:
        """Per recipients' calendar: how many, first and last submission."""
        q = (
            select(
                Recipient.calendar,
                func.count(),
                func.min(Recipient.submitted_at),
                func.max(Recipient.submitted_at),
            )
            .where(Recipient.order_id == order_id, CUSTOMER)
            .group_by(Recipient.calendar)
        )
        return [
            CalendarSpan(str(c), int(n), _aware(lo), _aware(hi))
            for c, n, lo, hi in self.session.execute(q)
        ]

    def last_receipt(self, order_id: str, until: datetime) -> datetime | None:
        """The last receipt of a submitted message, up to `until`."""
        q = select(func.max(Recipient.final_at)).where(
            Recipient.order_id == order_id,
            CUSTOMER,
            Recipient.submitted_at.is_not(None),
            Recipient.final_at <= until,
        )
        return _aware(self.session.scalar(q))

    def histogram(
        self, order_id: str, what: str, start: datetime, width_seconds: int, until: datetime
    ) -> dict[int, int]:
        """Submissions (`submitted`) or receipts (`receipts`) per time bucket from `start`."""
        column = Recipient.submitted_at if what == "submitted" else Recipient.final_at
        bucket = (self._epoch(column) - int(start.timestamp())) / width_seconds
        bucket = cast(bucket, Integer)
        q = (
            select(bucket, func.count())
            .where(
                Recipient.order_id == order_id,
                CUSTOMER,
                Recipient.submitted_at.is_not(None),
                column.is_not(None),
                column <= until,
            )
            .group_by(bucket)
        )
        return {int(b): int(n) for b, n in self.session.execute(q)}

    def opt_outs(self, order_id: str, start: datetime, end: datetime) -> dict[str, int]:
        """STOP replies and STOP-link visits, per kind, of the order's recipients who were
        sent the message, made between `start` and `end`."""
        q = (
            select(Suppression.reason, func.count())
            .select_from(Suppression)
            .join(
                Recipient,
                and_(
                    Recipient.phone_hmac == Suppression.phone_hmac,
                    Recipient.order_id == order_id,
                ),
            )
            .where(
                CUSTOMER,
                Recipient.submitted_at.is_not(None),
                Suppression.created_at >= start,
                Suppression.created_at <= end,
                Suppression.reason.in_(("stop_reply", "stop_link")),
            )
            .group_by(Suppression.reason)
        )
        return {str(r): int(n) for r, n in self.session.execute(q)}

    def control_span(self, order_id: str) -> tuple[datetime | None, datetime | None]:
        q = select(func.min(Recipient.submitted_at), func.max(Recipient.final_at)).where(
            Recipient.order_id == order_id, CONTROL
        )
        row = self.session.execute(q).one()
        return _aware(row[0]), _aware(row[1])

    def orders_with_status(self, status: str) -> list[str]:
        q = select(Order.id).where(Order.status == status).order_by(Order.send_at)
        return list(self.session.scalars(q))
