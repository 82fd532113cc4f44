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


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates (min, max) bypass the column type: SQLite hands back naive UTC."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns MIN/MAX of a datetime column as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class SummaryRow:
    """One group of an order's recipients: same calendar, status, error and lateness."""

    calendar: str
    status: str
    error: str | None
    late: bool  # its receipt came after the report's cutoff
    n: int
    parts: int  # SMS segments of those submitted
    first: datetime | None  # first and last submission
    last: datetime | None
    last_receipt: datetime | None  # of a submitted message, up to `until`


class ReportRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._scan: dict[str, bool] = {}

    def _hinted(self, q: Any, order_id: str) -> Any:
        """On SQLite, an order that fills much of the ledger is read by a plain table scan:
        going through the (order_id, ...) index costs a random row lookup per recipient, ten
        times slower than the scan then. PostgreSQL's planner decides on its own statistics."""
        if self.session.get_bind().dialect.name != "sqlite":
            return q
        if order_id not in self._scan:
            mine = self.session.scalar(
                select(func.count()).where(Recipient.order_id == order_id, CUSTOMER)
            )
            everyone = self.session.scalar(select(func.max(Recipient.id)))
            self._scan[order_id] = bool(mine and everyone and mine * 4 >= everyone)
        if self._scan[order_id]:
            return q.with_hint(Recipient, "NOT INDEXED", "sqlite")
        return q

    def summary(self, order_id: str, cutoff: datetime | None, until: datetime) -> list[SummaryRow]:
        """The order's own recipients in one pass: per calendar, status, error and lateness
        (with a cutoff, receipts after it are flagged late: a final report is the state at
        the cutoff), how many, their segments, first and last submission, last receipt."""
        late: ColumnElement[int] = cast(0, Integer)
        if cutoff is not None:
            late = case((Recipient.final_at > cutoff, 1), else_=0)
        submitted = Recipient.submitted_at.is_not(None)
        # Computed in a subquery: grouping by an expression with bound values is refused by
        # PostgreSQL (each occurrence gets its own parameter).
        rows = self._hinted(
            select(
                Recipient.calendar,
                Recipient.status,
                Recipient.error,
                late.label("late"),
                case((submitted, Recipient.parts), else_=0).label("parts"),
                Recipient.submitted_at,
                case((and_(submitted, Recipient.final_at <= until), Recipient.final_at)).label(
                    "receipt_at"
                ),
            ).where(Recipient.order_id == order_id, CUSTOMER),
            order_id,
        ).subquery()
        q = select(
            rows.c.calendar,
            rows.c.status,
            rows.c.error,
            rows.c.late,
            func.count(),
            func.coalesce(func.sum(rows.c.parts), 0),
            func.min(rows.c.submitted_at),
            func.max(rows.c.submitted_at),
            func.max(rows.c.receipt_at),
        ).group_by(rows.c.calendar, rows.c.status, rows.c.error, rows.c.late)
        return [
            SummaryRow(
                str(c),
                str(st),
                str(e) if e is not None else None,
                bool(lt),
                int(n),
                int(parts),
                _aware(lo),
                _aware(hi),
                _aware(rec),
            )
            for c, st, e, lt, n, parts, lo, hi, rec in self.session.execute(q)
        ]

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
        # The flag is computed in a subquery: grouping by an expression with bound values
        # is refused by PostgreSQL (each occurrence gets its own parameter).
        rows = (
            select(Recipient.status, Recipient.error, late.label("late"))
            .where(Recipient.order_id == order_id, CONTROL if controls else CUSTOMER)
            .subquery()
        )
        q = select(rows.c.status, rows.c.error, rows.c.late, func.count()).group_by(
            rows.c.status, rows.c.error, rows.c.late
        )
        return [
            OutcomeRow(str(s), str(e) if e is not None else None, bool(lt), int(n))
            for s, e, lt, n in self.session.execute(q)
        ]

    def by_department_sex(self, order_id: str) -> list[tuple[str, str, int]]:
        q = self._hinted(
            select(Recipient.department, Recipient.sex, func.count())
            .where(Recipient.order_id == order_id, CUSTOMER)
            .group_by(Recipient.department, Recipient.sex),
            order_id,
        )
        return [(str(d), str(s), int(n)) for d, s, n in self.session.execute(q)]

    def prospect_ids(self, order_id: str) -> np.ndarray:
        """The order's own recipients' ids, to join the base's attributes. Internal only."""
        q = select(Recipient.prospect_id).where(Recipient.order_id == order_id, CUSTOMER)
        return np.fromiter((r[0] for r in self.session.execute(q)), dtype=np.int64)

    def histogram(
        self, order_id: str, what: str, start: datetime, width_seconds: int, until: datetime
    ) -> dict[int, int]:
        """Submissions (`submitted`) or receipts (`receipts`) per time bucket from `start`."""
        column = Recipient.submitted_at if what == "submitted" else Recipient.final_at
        bucket = cast((self._epoch(column) - int(start.timestamp())) / width_seconds, Integer)
        rows = self._hinted(
            select(bucket.label("bucket")).where(
                Recipient.order_id == order_id,
                CUSTOMER,
                Recipient.submitted_at.is_not(None),
                column.is_not(None),
                column <= until,
            ),
            order_id,
        ).subquery()
        q = select(rows.c.bucket, func.count()).group_by(rows.c.bucket)
        return {int(b): int(n) for b, n in self.session.execute(q)}

    def opt_outs(self, order_id: str, start: datetime, end: datetime) -> dict[str, int]:
        """STOP replies and STOP-link visits, per kind, of the order's recipients who were
        sent the message, made between `start` and `end`."""
        q = self._hinted(
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
            .group_by(Suppression.reason),
            order_id,
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
