"""All SQL of the send ledger and its batches. Values are bound; the caller owns the
transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import polars as pl
from sqlalchemy import (
    BigInteger,
    any_,
    bindparam,
    case,
    cast,
    delete,
    extract,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datasets import reference
from datasets import snapshot as snap
from datasets.snapshot import Snapshot
from dispatch import windows
from dispatch.models import (
    Batch,
    CarrierStatus,
    EarlyReceipt,
    HmacIndex,
    MessagePart,
    OutcomeTally,
    PeopleTally,
    Recipient,
)
from dispatch.states import BatchStatus, CarrierState, RecipientStatus
from kit import bulk
from kit.clock import PARIS as PARIS_ZONE
from kit.db import executemany
from kit.settings import get_settings
from sales.orders.models import Order, OrderEvent
from sales.orders.states import OrderStatus

R, B = RecipientStatus, BatchStatus

# The tables themselves, for Core statements (executemany without the ORM's per-row work).
RECIPIENTS = Recipient.metadata.tables[Recipient.__tablename__]
BATCHES = Batch.metadata.tables[Batch.__tablename__]
OUTCOME_TALLIES = OutcomeTally.metadata.tables[OutcomeTally.__tablename__]
_CELL_KEYS = ("control", "calendar", "status", "error", "submitted_bin", "final_bin")
THOUSAND: Any = literal_column("1000")  # inlined: PostgreSQL groups by equal expressions only
TALLY_BIN_MS = 300_000  # five minutes: every bucket width of the report is a multiple
# Who the people tallies group, as the ledger holds them.
_PEOPLE = {
    "prospect_id": pl.Int64,
    "calendar": pl.String,
    "department": pl.String,
    "sex": pl.String,
}
_PEOPLE_KEYS = (Recipient.calendar, Recipient.department, Recipient.sex)


def _band(on: date) -> pl.Expr:
    """A recipient's age band on `on` (see PeopleTally)."""
    return reference.age_band(pl.col("birth_date"), on).alias("age_band")


def epoch_ms(column: Any, dialect: str) -> Any:
    """A timestamp column as milliseconds since 1970, computed by the database: the report's
    ledger read and the tallies convert alike, so that both give the same instants. SQLite
    turns its text into rounded milliseconds; PostgreSQL's are truncated, as the report's
    conversion of its timestamps is."""
    if dialect == "sqlite":
        # julianday is SQLite's own milliseconds over a day (unixepoch's 'subsec' needs
        # SQLite 3.42, newer than some Pythons bundle): within 1e-4 ms of them, rounded.
        days = func.julianday(column) - literal_column("2440587.5")
        ms = func.round(days * literal_column("86400000"))
    else:
        ms = func.floor(extract("epoch", column) * THOUSAND)
    return cast(ms, BigInteger)


class Claimed(NamedTuple):
    """What sending one recipient needs, read in the statement that claims it."""

    id: int
    prospect_id: int
    phone_enc: bytes
    phone_hmac: bytes
    sex: str
    department: str
    stop_token: str | None
    status: RecipientStatus
    batch: int


class BatchState(NamedTuple):
    number: int
    status: BatchStatus
    calendar: str
    enqueued_at: datetime | None
    heartbeat_at: datetime | None
    not_before: datetime | None


# The states of a recipient that its run may still record: `pending` under the batch's claim
# watermark (see Batch.claimed_to), or `submitting` (claimed row by row before revision 0014).
CLAIMABLE = (R.pending, R.submitting)


def _claimable() -> Any:
    """The status condition of CLAIMABLE without an expanding IN (executemany refuses one)."""
    return or_(Recipient.status == R.pending, Recipient.status == R.submitting)


def _watermark(order_id: str, number: int) -> Any:
    """The batch's claim watermark, as a scalar subquery (0 when nothing is claimed yet)."""
    top = select(Batch.claimed_to).where(Batch.order_id == order_id, Batch.number == number)
    return func.coalesce(top.scalar_subquery(), 0)


def _in_flight(order_id: str, number: int) -> Any:
    """Recipients of a batch being handed over: `submitting`, or `pending` at or under its
    watermark."""
    return or_(
        Recipient.status == R.submitting,
        (Recipient.status == R.pending) & (Recipient.id <= _watermark(order_id, number)),
    )


def _by_keys(values: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for v in values:
        groups.setdefault(tuple(sorted(k for k in v if k != "_id")), []).append(v)
    return groups


class Target(NamedTuple):
    """What applying a receipt to a recipient needs (see LedgerRepository.receipt_targets)."""

    id: int
    status: str
    submitted_ms: int | None
    batch: tuple[str, int]  # (order id, batch)
    control: bool
    parts: int
    error: str | None


class Move(NamedTuple):
    """`n` recipients of a batch (control numbers or not) moved from `source` (`pending`, or
    `submitted` within one five-minute bin) to `status` with `error`, with their parts and
    their instants in milliseconds (see epoch_ms): submissions from `first_ms` to `last_ms`,
    the final one `fin_ms`. For the tallies."""

    control: bool
    status: str
    error: str | None
    n: int
    parts: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    fin_ms: int | None = None
    source: str = RecipientStatus.pending.value


def _among(column: Any, values: Sequence[Any], dialect: str) -> Any:
    """`column IN values`: on PostgreSQL `= ANY` of one array bound (thousands of receipts'
    ids are one parameter, not a statement rendered with one placeholder each)."""
    if dialect == "postgresql":
        return column == any_(bindparam("_among", list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def _per_order(batches: Iterable[tuple[str, int]]) -> dict[str, set[int]]:
    per_order: dict[str, set[int]] = {}
    for order_id, number in batches:
        per_order.setdefault(order_id, set()).add(number)
    return per_order


def _least(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _most(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


class LedgerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_recipients(self, order_id: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """The pending rows of a plan, given column by column (prospect_id, batch, calendar,
        department, sex, phone_enc, phone_hmac, stop_token): one bare executemany of tuples,
        COPY on PostgreSQL (SQLAlchemy's per-value work cost more than the database's)."""
        bulk.insert_columns(
            self.session,
            RECIPIENTS,
            columns,
            {"order_id": order_id, "status": R.pending, "parts": 0},
        )

    def add_batches(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.connection().execute(insert(BATCHES), list(rows))

    def batch(self, order_id: str, number: int) -> Batch | None:
        return self.session.scalar(
            select(Batch).where(Batch.order_id == order_id, Batch.number == number)
        )

    def batches(self, order_id: str) -> list[Batch]:
        q = select(Batch).where(Batch.order_id == order_id).order_by(Batch.number)
        return list(self.session.scalars(q))

    def unfinished_batches(self, order_id: str) -> list[BatchState]:
        """The batches not done yet, as plain rows (the scheduler reads them on every tick)."""
        q = (
            select(
                Batch.number,
                Batch.status,
                Batch.calendar,
                Batch.enqueued_at,
                Batch.heartbeat_at,
                Batch.not_before,
            )
            .where(Batch.order_id == order_id, Batch.status != B.done)
            .order_by(Batch.number)
        )
        return [BatchState._make(r) for r in self.session.execute(q)]

    def enqueue(self, order_id: str, numbers: Sequence[int], now: datetime) -> None:
        """Mark batches enqueued, in one statement."""
        if numbers:
            self.session.execute(
                update(Batch)
                .where(Batch.order_id == order_id, Batch.number.in_(numbers))
                .values(status=B.enqueued, enqueued_at=now)
                .execution_options(synchronize_session=False)
            )

    def claim_batch(self, order_id: str, number: int, now: datetime, runner: str) -> bool:
        """Compare-and-set: the batch is ours to run (pending or enqueued -> running)."""
        result = self.session.execute(
            update(Batch)
            .where(
                Batch.order_id == order_id,
                Batch.number == number,
                Batch.status.in_((B.pending, B.enqueued)),
            )
            .values(status=B.running, runner=runner, heartbeat_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    def heartbeat(
        self, order_id: str, number: int, runner: str, now: datetime, claimed_to: int | None = None
    ) -> bool:
        """The run is alive and still holds the batch (False: it was presumed dead). With
        `claimed_to`, the batch's recipients up to that id are claimed by this run in the same
        statement (the watermark: one row written for a whole chunk)."""
        values: dict[str, Any] = {"heartbeat_at": now}
        if claimed_to is not None:
            values["claimed_to"] = claimed_to
        result = self.session.execute(
            update(Batch)
            .where(
                Batch.order_id == order_id,
                Batch.number == number,
                Batch.status == B.running,
                Batch.runner == runner,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def set_batch(
        self,
        order_id: str,
        number: int,
        status: BatchStatus,
        runner: str | None = None,
        **values: Any,
    ) -> None:
        """Set a batch's status; with `runner`, only while that run still holds it."""
        q = update(Batch).where(Batch.order_id == order_id, Batch.number == number)
        if runner is not None:
            q = q.where(Batch.status == B.running, Batch.runner == runner)
        self.session.execute(q.values(status=status, **values))

    def next_pending(self, order_id: str, number: int, limit: int) -> list[Claimed]:
        """What sending the next `limit` recipients of a batch needs, in ledger order: the
        pending ones above its claim watermark (read only; `heartbeat` claims them)."""
        q = (
            select(
                Recipient.id,
                Recipient.prospect_id,
                Recipient.phone_enc,
                Recipient.phone_hmac,
                Recipient.sex,
                Recipient.department,
                Recipient.stop_token,
                Recipient.status,
                Recipient.batch,
            )
            .where(
                Recipient.order_id == order_id,
                Recipient.batch == number,
                Recipient.status == R.pending,
                Recipient.id > _watermark(order_id, number),
            )
            .order_by(Recipient.id)
            .limit(limit)
        )
        return [
            Claimed(int(i), int(p), bytes(e), bytes(h), sx, dep, tok, R.submitting, int(b))
            for i, p, e, h, sx, dep, tok, _, b in self.session.execute(q)
        ]

    def mark(self, rows: Iterable[dict[str, Any]]) -> None:
        """Bulk update by primary key: each dict has `id` and the columns to set."""
        values = list(rows)
        if values:
            self.session.execute(update(Recipient), values)

    def mark_submitting(self, rows: Iterable[dict[str, Any]]) -> int:
        """Like `mark`, for rows the caller claimed and still in flight only (`pending` under
        the watermark, or `submitting`): a row given up as unknown meanwhile (its run was
        presumed dead) stays unknown. Returns how many rows changed (-1: cannot tell)."""
        values = [{"_id": r["id"], **{k: v for k, v in r.items() if k != "id"}} for r in rows]
        changed = 0
        for keys_, group in _by_keys(values).items():
            stmt = (
                update(Recipient)
                .where(Recipient.id == bindparam("_id"), _claimable())
                .values({k: bindparam(k) for k in keys_})
                .execution_options(synchronize_session=False)
            )
            count = self.session.connection().execute(stmt, group).rowcount
            changed = -1 if changed < 0 or count < 0 else changed + count
        return changed

    def mark_submitted(self, rows: Sequence[tuple[int, str, int]], now: datetime) -> int:
        """(id, message id, parts) of recipients the carrier accepted, for rows still in flight
        (see `mark_submitting`): one executemany on SQLite, one statement on PostgreSQL, the
        shared values bound once. Returns how many rows changed (-1: the driver cannot tell)."""
        if not rows:
            return 0
        ids, message_ids, parts = (list(c) for c in zip(*rows, strict=True))
        return bulk.update_columns(
            self.session,
            RECIPIENTS,
            "id",
            {"id": ids, "message_id": message_ids, "parts": parts},
            {"status": R.submitted, "submitted_at": now},
            where=_claimable(),
        )

    def receipt_targets(self, message_ids: Sequence[str]) -> dict[str, Target]:
        """message id -> what a receipt for it needs, of the recipients that have these
        message ids (the submission's instant in milliseconds computed by the database, as
        the tallies read it)."""
        if not message_ids:
            return {}
        dialect = self.session.get_bind().dialect.name
        r = RECIPIENTS.c
        q = select(
            r.message_id,
            r.id,
            r.status,
            epoch_ms(r.submitted_at, dialect),
            r.order_id,
            r.batch,
            r.prospect_id < literal_column("0"),
            r.parts,
            r.error,
        ).where(_among(r.message_id, message_ids, dialect))
        return {
            str(m): Target(
                int(i),
                str(st),
                None if ms is None else int(ms),
                (str(o), int(b)),
                bool(c),
                int(p or 0),
                e,
            )
            for m, i, st, ms, o, b, c, p, e in self.session.execute(q)
        }

    def finalise(self, rows: Sequence[tuple[int, str, str | None]], now: datetime) -> int:
        """(id, final status, error) from delivery receipts, for rows still `submitted` (the
        first of an id's rows wins). Returns how many rows changed (-1: the driver cannot
        tell)."""
        first: dict[int, tuple[str, str | None]] = {}
        for i, st, e in rows:
            first.setdefault(i, (str(st), e))
        if not first:
            return 0
        return bulk.update_columns(
            self.session,
            RECIPIENTS,
            "id",
            {
                "id": list(first),
                "status": [st for st, _ in first.values()],
                "error": [e for _, e in first.values()],
            },
            {"final_at": now},
            where=Recipient.status == R.submitted,
        )

    def unclaim(self, order_id: str, number: int, ids: Sequence[int]) -> None:
        """Back to pending: recipients claimed but never handed to the carrier (the watermark
        goes back below the first of them still in flight)."""
        if not ids:
            return
        first = self.session.scalar(
            select(func.min(Recipient.id)).where(
                Recipient.id.in_(ids), Recipient.status.in_(CLAIMABLE)
            )
        )
        if first is None:
            return
        self.session.execute(
            update(Batch)
            .where(Batch.order_id == order_id, Batch.number == number)
            .values(claimed_to=int(first) - 1)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(
            update(Recipient)
            .where(Recipient.id.in_(ids), Recipient.status == R.submitting)
            .values(status=R.pending)
            .execution_options(synchronize_session=False)
        )

    def abandon_submitting(self, order_id: str, number: int) -> list[bytes]:
        """Recipients left in flight by a crash (`pending` under the batch's watermark, or
        `submitting`): they may or may not have been sent, so they are never sent again;
        reported as unknown, not billed. Returns the phone HMACs of the prospects among them
        (control numbers left out), for the contact history."""
        q = (
            update(Recipient)
            .where(
                Recipient.order_id == order_id,
                Recipient.batch == number,
                _in_flight(order_id, number),
            )
            .values(status=R.unknown, error="interrupted")
            .returning(Recipient.phone_hmac, Recipient.prospect_id)
        )
        rows = self.session.execute(q, execution_options={"synchronize_session": False})
        return [bytes(mac) for mac, prospect in rows if prospect >= 0]

    def pending_in_batch(self, order_id: str, number: int) -> int:
        """Recipients of a batch still to claim (pending above its watermark)."""
        q = select(func.count()).where(
            Recipient.order_id == order_id,
            Recipient.batch == number,
            Recipient.status == R.pending,
            Recipient.id > _watermark(order_id, number),
        )
        return int(self.session.scalar(q) or 0)

    def counts(self, order_id: str, controls: bool = False) -> dict[str, int]:
        """Recipients per status (the order's own; control numbers with `controls`); those
        being handed over are `submitting`, whether claimed by watermark or row by row."""
        own = Recipient.prospect_id < 0 if controls else Recipient.prospect_id >= 0
        q = (
            select(Recipient.status, func.count())
            .where(Recipient.order_id == order_id, own)
            .group_by(Recipient.status)
        )
        counts = {str(s): int(n) for s, n in self.session.execute(q)}
        flying = select(func.count()).select_from(
            RECIPIENTS.join(
                BATCHES,
                (Batch.order_id == Recipient.order_id) & (Batch.number == Recipient.batch),
            )
        )
        flying = flying.where(  # only a run holds recipients in flight: a running batch's
            Batch.order_id == order_id,
            Batch.status == B.running,
            Batch.claimed_to.is_not(None),
            Recipient.status == R.pending,
            Recipient.id <= Batch.claimed_to,
            own,
        )
        n = int(self.session.scalar(flying) or 0)
        if n:
            counts[R.pending] -= n
            counts[R.submitting] = counts.get(R.submitting, 0) + n
            if not counts[R.pending]:
                del counts[R.pending]
        return counts

    def counts_by_calendar(self, order_id: str) -> list[tuple[str, str, int]]:
        q = (
            select(Recipient.calendar, Recipient.status, func.count())
            .where(Recipient.order_id == order_id, Recipient.prospect_id >= 0)
            .group_by(Recipient.calendar, Recipient.status)
        )
        return [(str(c), str(s), int(n)) for c, s, n in self.session.execute(q)]

    def by_message_ids(self, message_ids: Sequence[str]) -> list[Recipient]:
        if not message_ids:
            return []
        q = select(Recipient).where(Recipient.message_id.in_(message_ids))
        return list(self.session.scalars(q.execution_options(populate_existing=True)))

    def by_ids(self, ids: Sequence[int], lock: bool = False) -> list[Recipient]:
        """These recipients by id; `lock`: their rows locked in id order until the
        transaction ends (PostgreSQL; SQLite's writer holds the whole database)."""
        if not ids:
            return []
        q = select(Recipient).where(Recipient.id.in_(ids)).order_by(Recipient.id)
        if lock:
            q = q.with_for_update()
        return list(self.session.scalars(q.execution_options(populate_existing=True)))

    def any_early_receipt(self) -> bool:
        """Is any receipt waiting for its message id to be recorded?"""
        return self.session.scalar(select(EarlyReceipt.id).limit(1)) is not None

    def early_receipts(self, limit: int) -> list[EarlyReceipt]:
        q = select(EarlyReceipt).order_by(EarlyReceipt.id).limit(limit)
        return list(self.session.scalars(q))

    def early_receipts_for(self, message_ids: Sequence[str]) -> list[EarlyReceipt]:
        if not message_ids:
            return []
        q = select(EarlyReceipt).where(EarlyReceipt.message_id.in_(message_ids))
        return list(self.session.scalars(q))

    def recorded_message_ids(self, message_ids: Sequence[str]) -> set[str]:
        """Which of these carrier ids are recorded (a message's, or one of its parts')."""
        if not message_ids:
            return set()
        whole = select(Recipient.message_id).where(Recipient.message_id.in_(message_ids))
        parts = select(MessagePart.message_id).where(MessagePart.message_id.in_(message_ids))
        return {str(m) for m in self.session.scalars(whole.union(parts))}

    def drop_early_receipts(self, ids: Sequence[int]) -> None:
        if ids:
            self.session.execute(delete(EarlyReceipt).where(EarlyReceipt.id.in_(ids)))

    def drop_early_receipts_before(self, before: datetime) -> int:
        result = self.session.execute(delete(EarlyReceipt).where(EarlyReceipt.received_at < before))
        return int(getattr(result, "rowcount", 0))

    def by_stop_token(self, token: str) -> Recipient | None:
        return self.session.scalar(select(Recipient).where(Recipient.stop_token == token))

    def has_ledger(self, order_id: str) -> bool:
        q = select(func.count()).where(Batch.order_id == order_id)
        return bool(self.session.scalar(q))


class TallyRepository:
    """The ledger folded for the send report (dispatch.models.OutcomeTally, PeopleTally),
    written in the transaction that writes the ledger rows they count."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def plan(
        self, order_id: str, columns: Mapping[str, Sequence[Any]], base: Snapshot, at: datetime
    ) -> None:
        """The tallies of a ledger just planned (every recipient pending), from its rows (in
        batches of one calendar each); its own recipients' department, sex and age on the day
        of `at` (Paris: the send day) from `base`, the snapshot they were drawn from. Columnar:
        no loop over the rows but to take their ids and batches."""
        ids = np.asarray(columns["prospect_id"], dtype=np.int64)
        batches = np.asarray(columns["batch"], dtype=np.int64)
        on = at.astimezone(PARIS_ZONE).date()
        own = pl.LazyFrame({"prospect_id": ids[ids >= 0]})
        attributes = pl.scan_parquet(base.attributes).select(
            pl.col("prospect_id").cast(pl.Int64), "department", "sex", "birth_date"
        )
        people = (
            own.join(attributes, on="prospect_id")
            .group_by("department", "sex", _band(on))
            .agg(pl.len().alias("n"))
            .collect()
        )
        calendars = {d: windows.calendar_of(d).key for d in people["department"].unique()}
        self._add_people(
            order_id,
            people.with_columns(
                pl.col("department").cast(pl.String).replace_strict(calendars).alias("calendar"),
                pl.col("department").cast(pl.String),
                pl.col("sex").cast(pl.String).fill_null(""),  # the ledger's "no civility"
                pl.lit(on).alias("ages_on"),
            ),
        )
        keys, first, counts = np.unique(
            batches * 2 + (ids < 0), return_index=True, return_counts=True
        )
        pending = [
            {
                "order_id": order_id,
                "batch": int(key) // 2,
                "control": bool(key % 2),
                "calendar": columns["calendar"][i],  # a batch is of one calendar
                "status": R.pending.value,
                "n": int(n),
                "parts": 0,
            }
            for key, i, n in zip(keys.tolist(), first.tolist(), counts.tolist(), strict=True)
        ]
        if pending:
            self.session.execute(insert(OutcomeTally), pending)

    def _add_people(self, order_id: str, people: pl.DataFrame) -> None:
        """PeopleTally rows: calendar, department, sex, n (and age_band, ages_on if known)."""
        if people.height:
            self.session.execute(
                insert(PeopleTally),
                [{"order_id": order_id, **p} for p in people.iter_rows(named=True)],
            )

    def rebuild(self, order_id: str, at: datetime | None = None) -> None:
        """The order's tallies folded again from its whole ledger: for an order planned
        before they were kept, or a ledger written by other means (benchmarks). Ages are
        taken on the day of `at`, else on the day they were tallied on, with the current
        base's birth dates; an order tallied without them stays so (its report joins them)."""
        on = at.astimezone(PARIS_ZONE).date() if at else self._ages_on(order_id)
        for table in (PeopleTally, OutcomeTally):
            self.session.execute(delete(table).where(table.order_id == order_id))
        own = select(Recipient.prospect_id, *_PEOPLE_KEYS).where(
            Recipient.order_id == order_id, Recipient.prospect_id >= 0
        )
        frame = pl.DataFrame(self.session.execute(own).all(), schema=_PEOPLE, orient="row")
        keys = ["calendar", "department", "sex"]
        if on is None:
            people = frame.group_by(keys).agg(pl.len().alias("n"))
        else:
            born = pl.scan_parquet(snap.current(get_settings().base_dir).attributes).select(
                pl.col("prospect_id").cast(pl.Int64), "birth_date"
            )
            people = (
                frame.lazy()
                .join(born, on="prospect_id", how="left")
                .group_by(*keys, _band(on))
                .agg(pl.len().alias("n"))
                .with_columns(pl.lit(on).alias("ages_on"))
                .collect()
            )
        self._add_people(order_id, people)
        batches = sorted(
            self.session.scalars(
                select(Recipient.batch).where(Recipient.order_id == order_id).distinct()
            )
        )
        for start in range(0, len(batches), 500):
            chunk = batches[start : start + 500]
            self.session.execute(self._fold(order_id, chunk))

    def _ages_on(self, order_id: str) -> date | None:
        """The day the order's ages were tallied on (None: tallied without ages, or never)."""
        q = select(func.max(PeopleTally.ages_on)).where(PeopleTally.order_id == order_id)
        return self.session.scalar(q)

    def refresh(self, batches: Iterable[tuple[str, int]]) -> None:
        """The tallies of these (order id, batch) folded again from their ledger rows: a
        thousand rows each, read through the (order, batch, status) index. Each batch's row
        is locked first (in order, so two refreshes never deadlock): on PostgreSQL two
        transactions refreshing one batch at once would otherwise both insert its tallies."""
        per_order = _per_order(batches)
        for order_id in sorted(per_order):
            numbers = sorted(per_order[order_id])
            self._lock(order_id, numbers)
            self.session.execute(
                delete(OutcomeTally).where(
                    OutcomeTally.order_id == order_id, OutcomeTally.batch.in_(numbers)
                )
            )
            self.session.execute(self._fold(order_id, numbers))

    def instant_ms(self, at: datetime) -> int:
        """`at` in milliseconds as the tallies read the ledger's timestamps (epoch_ms), so
        that a delta lands in the bin and bounds a refold would give it."""
        dialect = self.session.get_bind().dialect.name
        value = bindparam("at", at, type_=Recipient.submitted_at.type)
        return int(self.session.scalar(select(epoch_ms(value, dialect))) or 0)

    def shift(self, order_id: str, number: int, moves: Sequence[Move]) -> bool:
        """Recipients of one batch moved between statuses: their tallies adjusted by these
        counts instead of the batch folded again. A cell that loses submissions at one of its
        bounds (and keeps others between them) has its bounds read again from the batch's
        submitted rows. Locks the batch's row first, as `refresh` does. False, having changed
        nothing, when the tallies do not hold what is moved: the caller folds the batch again."""
        self._lock(order_id, [number])
        t = OutcomeTally
        q = select(
            t.id, t.control, t.calendar, t.status, t.error, t.submitted_bin, t.final_bin,
            t.n, t.parts, t.first_ms, t.last_ms, t.last_final_ms,
        ).where(t.order_id == order_id, t.batch == number)  # fmt: skip
        cells: dict[tuple[Any, ...], list[Any]] = {}
        for row in self.session.execute(q):
            cells[tuple(row[1:7])] = [row[0], *row[7:], False]
        calendar = next((key[1] for key in cells), None)  # a batch is of one calendar
        stale: set[tuple[Any, ...]] = set()  # cells whose bounds are read again
        for move in moves:
            sub = None if move.first_ms is None else move.first_ms // TALLY_BIN_MS
            fin = None if move.fin_ms is None else move.fin_ms // TALLY_BIN_MS
            pending = move.source == R.pending.value
            source = (move.control, calendar, move.source, None, None if pending else sub, None)
            cell = cells.get(source)
            if calendar is None or cell is None or cell[1] < move.n:
                return False
            cell[1], cell[2], cell[-1] = (
                cell[1] - move.n,
                cell[2] - (0 if pending else move.parts),
                True,
            )
            if (
                cell[1]
                and cell[3] != cell[4]
                and (
                    _least(move.first_ms, cell[3]) == move.first_ms
                    or _most(move.last_ms, cell[4]) == move.last_ms
                )
            ):
                stale.add(source)
            key = (move.control, calendar, move.status, move.error, sub, fin)
            into = cells.setdefault(key, [None, 0, 0, None, None, None, True])
            into[1] += move.n
            into[2] += move.parts if move.first_ms is not None else 0
            into[3] = _least(into[3], move.first_ms)
            into[4] = _most(into[4], move.last_ms)
            into[5] = _most(into[5], move.fin_ms)
            into[-1] = True
        if stale:
            self._bounds(order_id, number, {k: cells[k] for k in stale if cells[k][1]})
        self._write(order_id, number, cells)
        return True

    def _bounds(
        self, order_id: str, number: int, cells: Mapping[tuple[Any, ...], list[Any]]
    ) -> None:
        """The first and last submission of these `submitted` cells, from the batch's rows."""
        dialect = self.session.get_bind().dialect.name
        sub = epoch_ms(Recipient.submitted_at, dialect)
        keys = [
            Recipient.prospect_id < literal_column("0"),
            sub.op("/")(literal_column(str(TALLY_BIN_MS))),
        ]
        q = (
            select(*keys, func.min(sub), func.max(sub))
            .where(
                Recipient.order_id == order_id,
                Recipient.batch == number,
                Recipient.status == R.submitted,
                Recipient.error.is_(None),
            )
            .group_by(*keys)
        )
        found = {(bool(r[0]), int(r[1])): (r[2], r[3]) for r in self.session.execute(q)}
        for key, cell in cells.items():
            cell[3], cell[4] = found[(key[0], key[4])]

    def lock(self, batches: Iterable[tuple[str, int]]) -> None:
        """These (order id, batch) rows locked in order, before `shift` and `refresh` take
        them one by one in another order (PostgreSQL would otherwise risk a deadlock)."""
        per_order = _per_order(batches)
        for order_id in sorted(per_order):
            self._lock(order_id, sorted(per_order[order_id]))

    def _lock(self, order_id: str, numbers: Sequence[int]) -> None:
        """The batches' rows locked, in order (PostgreSQL: two transactions writing one
        batch's tallies take turns; SQLite's write lock does it already)."""
        self.session.execute(
            select(Batch.id)
            .where(Batch.order_id == order_id, Batch.number.in_(numbers))
            .order_by(Batch.number)
            .with_for_update()
        ).all()

    def _write(
        self, order_id: str, number: int, cells: Mapping[tuple[Any, ...], list[Any]]
    ) -> None:
        """The changed cells of `shift` written back: emptied ones deleted, new ones
        inserted, the others updated by id."""
        t = OUTCOME_TALLIES
        gone = [c[0] for c in cells.values() if c[-1] and c[1] == 0 and c[0] is not None]
        if gone:
            self.session.execute(delete(t).where(t.c.id.in_(gone)))
        fields = ("n", "parts", "first_ms", "last_ms", "last_final_ms")
        changed = [
            {"_id": c[0], **{f"_{f}": v for f, v in zip(fields, c[1:6], strict=True)}}
            for c in cells.values()
            if c[-1] and c[1] > 0 and c[0] is not None
        ]
        if changed:
            stmt = (
                update(t)
                .where(t.c.id == bindparam("_id"))
                .values({f: bindparam(f"_{f}") for f in fields})
            )
            executemany(self.session, stmt, changed)
        added = [
            {
                "order_id": order_id,
                "batch": number,
                **dict(zip(_CELL_KEYS, key, strict=True)),
                **dict(zip(fields, c[1:6], strict=True)),
            }
            for key, c in cells.items()
            if c[0] is None and c[1] > 0
        ]
        if added:
            self.session.execute(insert(t), added)

    def _fold(self, order_id: str, numbers: Sequence[int]) -> Any:
        """INSERT ... SELECT of the tallies of these batches (constants inlined, so that
        PostgreSQL sees the grouped expressions equal in SELECT and GROUP BY)."""
        dialect = self.session.get_bind().dialect.name
        sub = epoch_ms(Recipient.submitted_at, dialect)
        fin = epoch_ms(Recipient.final_at, dialect)
        width: Any = literal_column(str(TALLY_BIN_MS))
        keys = [
            Recipient.order_id,
            Recipient.batch,
            Recipient.prospect_id < literal_column("0"),
            Recipient.calendar,
            case(
                (Recipient.status == literal_column("'submitting'"), literal_column("'pending'")),
                else_=Recipient.status,
            ),
            Recipient.error,
            sub.op("/")(width),  # integer division on both backends
            fin.op("/")(width),
        ]
        submitted_parts = case((Recipient.submitted_at.is_not(None), Recipient.parts), else_=0)
        q = (
            select(
                *keys,
                func.count(),
                func.coalesce(func.sum(submitted_parts), 0),
                func.min(sub),
                func.max(sub),
                func.max(fin),
            )
            .where(Recipient.order_id == order_id, Recipient.batch.in_(numbers))
            .group_by(*keys)
        )
        t = OutcomeTally
        columns = [
            t.order_id, t.batch, t.control, t.calendar, t.status, t.error,
            t.submitted_bin, t.final_bin, t.n, t.parts, t.first_ms, t.last_ms, t.last_final_ms,
        ]  # fmt: skip
        return insert(OutcomeTally).from_select([c.key for c in columns], q)


class DispatchOrderRepository:
    """The orders the scheduler looks at."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def due(self, now: datetime) -> list[str]:
        q = select(Order.id).where(Order.status == OrderStatus.scheduled, Order.send_at <= now)
        return list(self.session.scalars(q.order_by(Order.send_at)))

    def dispatching(self) -> list[str]:
        q = select(Order.id).where(Order.status == OrderStatus.dispatching)
        return list(self.session.scalars(q))

    def last_event(self, order_id: str, actions: Sequence[str]) -> OrderEvent | None:
        """The order's latest event among `actions`."""
        q = (
            select(OrderEvent)
            .where(OrderEvent.order_id == order_id, OrderEvent.action.in_(actions))
            .order_by(OrderEvent.id.desc())
            .limit(1)
        )
        return self.session.scalar(q)


OK, UNAVAILABLE = CarrierState.ok, CarrierState.unavailable


class CarrierStatusRepository:
    """One row per carrier: what the workers last saw of it. Every write to a row is an
    UPDATE of that row first, so that workers recording at once take turns on it (a row lock
    on PostgreSQL, the write lock on SQLite) and each sees what the previous one committed."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, carrier: str) -> CarrierStatus | None:
        q = (
            select(CarrierStatus)
            .where(CarrierStatus.carrier == carrier)
            .execution_options(populate_existing=True)
        )
        return self.session.scalar(q)

    def all(self) -> list[CarrierStatus]:
        return list(self.session.scalars(select(CarrierStatus).order_by(CarrierStatus.carrier)))

    def _update(self, carrier: str, *where: Any, **values: Any) -> bool:
        stmt = update(CarrierStatus).where(CarrierStatus.carrier == carrier, *where)
        result = self.session.execute(
            stmt.values(**values).execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def _insert(self, carrier: str, **values: Any) -> bool:
        """A first row for the carrier; False when another transaction created it first."""
        try:
            with self.session.begin_nested():
                self.session.execute(insert(CarrierStatus).values(carrier=carrier, **values))
        except IntegrityError:
            return False
        return True

    def failed(self, carrier: str, error: str, now: datetime) -> bool:
        """A failure: the last error, and the state `unavailable` from the first failure of a
        run. True when this failure starts the run (the carrier was fine, or never seen)."""
        values = {"last_error": error[:200], "last_error_at": now}
        if not self._update(carrier, **values):
            if self._insert(carrier, state=UNAVAILABLE, since=now, **values):
                return True
            self._update(carrier, **values)
        return self._update(
            carrier, CarrierStatus.state != UNAVAILABLE, state=UNAVAILABLE, since=now
        )

    def succeeded(self, carrier: str, now: datetime, every: timedelta) -> bool:
        """A success: the state `ok`. True when it ends a run of failures. The time of the
        last success is refreshed at most once per `every`, so that the workers recording
        their chunks do not all queue on this one row."""
        if self._update(
            carrier,
            CarrierStatus.state == UNAVAILABLE,
            state=OK,
            since=now,
            last_success_at=now,
        ):
            return True
        stale = or_(
            CarrierStatus.last_success_at.is_(None), CarrierStatus.last_success_at < now - every
        )
        if not self._update(carrier, stale, last_success_at=now) and self.get(carrier) is None:
            self._insert(carrier, state=OK, since=now, last_success_at=now)
        return False


class PartsRepository:
    """The parts of concatenated messages, each with the carrier's id for it."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(MessagePart), list(rows))

    def by_message_ids(self, message_ids: Sequence[str]) -> list[MessagePart]:
        if not message_ids:
            return []
        q = select(MessagePart).where(MessagePart.message_id.in_(message_ids))
        return list(self.session.scalars(q.execution_options(populate_existing=True)))

    def of_recipients(self, recipient_ids: Sequence[int]) -> list[MessagePart]:
        if not recipient_ids:
            return []
        q = select(MessagePart).where(MessagePart.recipient_id.in_(recipient_ids))
        return list(self.session.scalars(q.execution_options(populate_existing=True)))

    def mark(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(update(MessagePart), list(rows))


class HmacIndexRepository:
    """An order's own recipients' phone HMAC prefixes, sorted, with their prospect ids (see
    dispatch.models.HmacIndex): written at planning, read by the report's opt-out lookup."""

    PART = 1 << 18  # entries per row: 2 MB blobs, a million recipients in four rows

    def __init__(self, session: Session) -> None:
        self.session = session

    def write(self, order_id: str, prospect_ids: Sequence[int], hmacs: Sequence[bytes]) -> None:
        """Index the plan's rows (control numbers, negative prospect ids, left out). At least
        one row, perhaps empty: its presence says the order's report may use the index."""
        ids = np.asarray(prospect_ids, dtype=np.int64)
        mine = np.flatnonzero(ids >= 0)
        prefixes = hmac_prefixes([hmacs[i] for i in mine.tolist()])
        by = np.argsort(prefixes, kind="stable")
        prefixes, ids = prefixes[by], ids[mine][by]
        rows = [
            {
                "order_id": order_id,
                "part": part,
                "prefixes": prefixes[start : start + self.PART].astype("<u8").tobytes(),
                "prospect_ids": ids[start : start + self.PART].astype("<i8").tobytes(),
            }
            for part, start in enumerate(range(0, max(len(ids), 1), self.PART))
        ]
        self.session.connection().execute(insert(HmacIndex), rows)


def hmac_prefixes(hmacs: Sequence[bytes]) -> np.ndarray:
    """The first 8 bytes of each HMAC as a big-endian uint64, as a native uint64 array (the
    order of the numbers is the order of the bytes)."""
    joined = b"".join(hmacs)
    if len(joined) == 32 * len(hmacs):  # HMAC-SHA256: one reshape, no slice per value
        raw = np.frombuffer(joined, dtype=np.uint8).reshape(-1, 32)[:, :8]
        return np.ascontiguousarray(raw).view(">u8").ravel().astype(np.uint64)
    return np.frombuffer(b"".join(h[:8].ljust(8, b"\0") for h in hmacs), ">u8").astype(np.uint64)
