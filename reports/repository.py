"""All SQL of the reports: aggregates over an order's ledger, never a row of it. Values are
bound; the caller owns the transaction. The only per-recipient column read is the prospect id,
to join the base's attributes (age band) in memory; it never leaves reports/build.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Integer, String, and_, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from dispatch.models import Recipient
from rental.orders.models import Order
from segmentation.models import Suppression

CUSTOMER = Recipient.prospect_id >= 0  # control numbers have negative ids
HANDED_OVER = ("submitted", "delivered", "failed", "expired")  # the `submitted` count
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
    department: str
    sex: str
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

    def _of_order(self, order_id: str) -> ColumnElement[bool]:
        """The order's own recipients. On SQLite, an order that fills much of the ledger is
        read by a plain table scan: going through the (order_id, ...) index costs a random row
        lookup per recipient, ten times slower than the scan then (an expression on the column,
        `order_id || ''`, keeps SQLite off the index). PostgreSQL's planner decides on its own
        statistics."""
        mine = and_(Recipient.order_id == order_id, CUSTOMER)
        if self.session.get_bind().dialect.name != "sqlite":
            return mine
        if order_id not in self._scan:
            count = self.session.scalar(select(func.count()).where(mine))
            everyone = self.session.scalar(select(func.max(Recipient.id)))
            self._scan[order_id] = bool(count and everyone and count * 4 >= everyone)
        if self._scan[order_id]:
            return and_(Recipient.order_id.concat("") == order_id, CUSTOMER)
        return mine

    def summary(self, order_id: str, cutoff: datetime | None, until: datetime) -> list[SummaryRow]:
        """The order's own recipients in one pass: per department (and calendar), sex, status,
        error and lateness
        (with a cutoff, receipts after it are flagged late: a final report is the state at
        the cutoff), how many, their segments, first and last submission, last receipt."""
        late: ColumnElement[int] = cast(0, Integer)
        if cutoff is not None:
            late = case((Recipient.final_at > cutoff, 1), else_=0)
        submitted = Recipient.submitted_at.is_not(None)
        # Computed in a subquery: grouping by an expression with bound values is refused by
        # PostgreSQL (each occurrence gets its own parameter).
        rows = (
            select(
                Recipient.calendar,
                Recipient.department,
                Recipient.sex,
                Recipient.status,
                Recipient.error,
                late.label("late"),
                case((submitted, Recipient.parts), else_=0).label("parts"),
                Recipient.submitted_at,
                case((and_(submitted, Recipient.final_at <= until), Recipient.final_at)).label(
                    "receipt_at"
                ),
            )
            .where(self._of_order(order_id))
            .subquery()
        )
        q = select(
            rows.c.calendar,
            rows.c.department,
            rows.c.sex,
            rows.c.status,
            rows.c.error,
            rows.c.late,
            func.count(),
            func.coalesce(func.sum(rows.c.parts), 0),
            func.min(rows.c.submitted_at),
            func.max(rows.c.submitted_at),
            func.max(rows.c.receipt_at),
        ).group_by(
            rows.c.calendar, rows.c.department, rows.c.sex, rows.c.status, rows.c.error, rows.c.late
        )
        return [
            SummaryRow(
                str(c),
                str(d),
                str(sx or ""),
                str(st),
                str(e) if e is not None else None,
                bool(lt),
                int(n),
                int(parts),
                _aware(lo),
                _aware(hi),
                _aware(rec),
            )
            for c, d, sx, st, e, lt, n, parts, lo, hi, rec in self.session.execute(q)
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

    def prospect_ids(self, order_id: str) -> np.ndarray:
        """The order's own recipients' ids, to join the base's attributes. Internal only. Read
        as one aggregated string: a million rows through the driver one by one cost more."""
        mine = and_(Recipient.order_id == order_id, CUSTOMER)
        if self.session.get_bind().dialect.name == "sqlite":
            joined = func.group_concat(Recipient.prospect_id, ",")
        else:
            joined = func.string_agg(cast(Recipient.prospect_id, String), ",")
        text = self.session.scalar(select(joined).where(mine))
        if not text:
            return np.zeros(0, dtype=np.int64)
        return np.array(str(text).split(","), dtype=np.int64)

    def histograms(
        self, order_id: str, start: datetime, width_seconds: int, until: datetime
    ) -> tuple[dict[int, int], dict[int, int]]:
        """Submissions and receipts (of submitted messages, up to `until`) per time bucket from
        `start`, in one pass: grouped by the pair of buckets (at most the square of the number
        of buckets, since the caller keeps that small)."""
        origin = int(start.timestamp())
        # Every message handed to the carrier, the ones it refused on the spot included (they
        # have no submission time: their refusal is both): the series add up to `submitted`,
        # a published count, and the receipts to `submitted` less `awaiting_receipt`.
        handed = func.coalesce(Recipient.submitted_at, Recipient.final_at)
        sub = cast((self._epoch(handed) - origin) / width_seconds, Integer)
        fin = cast((self._epoch(Recipient.final_at) - origin) / width_seconds, Integer)
        rows = (
            select(
                case((handed <= until, sub)).label("sub"),
                case((Recipient.final_at <= until, fin)).label("fin"),
            )
            .where(self._of_order(order_id), Recipient.status.in_(HANDED_OVER))
            .subquery()
        )
        q = select(rows.c.sub, rows.c.fin, func.count()).group_by(rows.c.sub, rows.c.fin)
        submitted: dict[int, int] = {}
        receipts: dict[int, int] = {}
        for s_, f_, n in self.session.execute(q):
            if s_ is not None:
                submitted[int(s_)] = submitted.get(int(s_), 0) + int(n)
            if f_ is not None:
                receipts[int(f_)] = receipts.get(int(f_), 0) + int(n)
        return submitted, receipts

    def opt_outs(self, order_id: str, start: datetime, end: datetime) -> dict[str, int]:
        """STOP replies and STOP-link visits, per kind, of the order's recipients who were
        sent the message, made between `start` and `end`."""
        q = (
            select(Suppression.reason, func.count())
            .select_from(Suppression)
            .join(
                Recipient,
                and_(Recipient.phone_hmac == Suppression.phone_hmac, self._of_order(order_id)),
            )
            .where(
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
