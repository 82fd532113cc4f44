"""All SQL of the reports. A report reads the order's tallies (a few hundred rows) or, when they
cannot tell, its ledger once, as Arrow (ADBC: no Python object per row), aggregated in memory
(reports/aggregate.py): one pass instead of a grouped query per figure. The prospect ids read
serve only to join the base's birth dates for an order planned before its age bands were
tallied; the phone HMACs of the window's opt-outs are searched in the order's HMAC index
(written at planning) and checked in its ledger, or, for an order planned before the index,
matched to its contact history in the database. None of them leaves the reports' aggregation.
Values are bound; the caller owns the session's transaction (the ledger is read in one
snapshot)."""

from __future__ import annotations

import re
import typing
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from dispatch.models import Batch, HmacIndex, OutcomeTally, PeopleTally, Recipient
from dispatch.repository import epoch_ms
from dispatch.states import RecipientStatus as R
from sales.orders.models import Order
from segmentation.models import ContactEvent, Suppression

STOP_KINDS = ("stop_reply", "stop_link")
# The ledger's states of a recipient the contact history holds: handed the message, or perhaps
# (unknown); a failure counts once the carrier had accepted it (submitted_at), not a refusal.
_CONTACTED = (R.submitted, R.delivered, R.expired, R.unknown)
_IN_LIST = 5000  # bound values per statement: far below SQLite's and PostgreSQL's limits
_EXPANDED = {"render_postcompile": True}  # IN lists as one placeholder per value
# The columns of `ReportRepository.ledger`; times are milliseconds since 1970 (UTC).
LEDGER = {
    "calendar": pl.String,
    "department": pl.String,
    "sex": pl.String,
    "status": pl.String,
    "error": pl.String,
    "parts": pl.Int64,
    "submitted_ms": pl.Int64,
    "final_ms": pl.Int64,
    "prospect_id": pl.Int64,
}


class Cell(NamedTuple):
    """The order's outcome tallies summed over its batches (dispatch.models.OutcomeTally)."""

    control: bool
    calendar: str
    status: str
    error: str | None
    submitted_bin: int | None
    final_bin: int | None
    n: int
    parts: int
    first_ms: int | None
    last_ms: int | None
    last_final_ms: int | None


def _aware(value: datetime | str | None) -> datetime | None:
    """Aggregates (min, max) bypass the column type: SQLite hands back naive UTC text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _compiled(stmt: ClauseElement, dialect: Any) -> tuple[str, list[Any]]:
    """A statement's text for `dialect`, with its values in placeholder order."""
    compiled = stmt.compile(dialect=dialect, compile_kwargs=_EXPANDED)
    order = typing.cast(SQLCompiler, compiled).positiontup or []
    return compiled.string, [compiled.params[name] for name in order]


def _sqlite_read(url: URL, stmt: ClauseElement) -> pa.Table:
    """One statement through ADBC on a read-only connection of its own."""
    import adbc_driver_sqlite
    import adbc_driver_sqlite.dbapi as adbc

    if not url.database or url.database == ":memory:":
        raise RuntimeError("reports read the ledger from a database file, not :memory:")
    uri = Path(url.database).resolve().as_uri() + "?mode=ro"
    sql, params = _compiled(stmt, sqlite.dialect())
    with adbc.connect(uri) as conn, conn.cursor() as cur:
        # Rows per Arrow batch: the default (1,024) makes a thousand batches of a million rows.
        cur.adbc_statement.set_options(
            **{adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: "16384"}
        )
        cur.execute(sql, params)
        return cur.fetch_arrow_table()


def _postgresql_read(url: URL, parts: Sequence[ClauseElement]) -> pa.Table:
    """The parts of one result, read at once on a connection each, all in the same snapshot:
    the first connection exports it and the others adopt it (as `pg_dump --jobs` does), so the
    whole is what a single statement would have read. Shipping rows costs PostgreSQL more than
    producing them; the parts run on as many server processes."""
    import adbc_driver_postgresql.dbapi as adbc

    uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
    # ADBC's PostgreSQL driver takes $1, $2... placeholders (no DB-API module involved).
    dialect = PGDialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
    statements = [_compiled(stmt, dialect) for stmt in parts]
    with ExitStack() as stack:
        cursors: list[Any] = []
        for _ in parts:
            conn = stack.enter_context(adbc.connect(uri, autocommit=True))
            cur = stack.enter_context(conn.cursor())
            cur.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if not cursors:
                cur.execute("SELECT pg_export_snapshot()")
                row = cur.fetchone()
                snapshot = str(row[0]) if row else ""
                if not re.fullmatch(r"[0-9A-F-]+", snapshot):
                    raise RuntimeError(f"unexpected snapshot id from PostgreSQL: {snapshot!r}")
            else:  # SET takes no placeholder; the id comes from the server, checked above
                cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            cursors.append(stack.enter_context(conn.cursor()))

        def fetch(cur: Any, statement: tuple[str, list[Any]]) -> pa.Table:
            cur.execute(*statement)
            return cur.fetch_arrow_table()

        with ThreadPoolExecutor(len(parts)) as pool:  # ADBC and Arrow release the GIL
            tables = list(pool.map(fetch, cursors, statements))
    return pa.concat_tables(tables)


class ReportRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def ledger(self, order_id: str) -> pl.DataFrame:
        """Every ledger row of the order, control numbers included (negative prospect ids),
        with the columns of LEDGER, read in one consistent snapshot.

        Each backend gets the select list it produces fastest; the frame is the same. SQLite
        turns its timestamps (text) into milliseconds itself; PostgreSQL sends them as they
        are (converted here), in two halves read at once."""
        on_sqlite = self.session.get_bind().dialect.name == "sqlite"
        times: list[Any] = [Recipient.submitted_at, Recipient.final_at]
        if on_sqlite:
            times = [epoch_ms(t, "sqlite") for t in times]  # as the tallies read them
        q = select(
            Recipient.calendar,
            Recipient.department,
            Recipient.sex,
            Recipient.status,
            Recipient.error,
            Recipient.parts,
            times[0].label("submitted_ms"),
            times[1].label("final_ms"),
            Recipient.prospect_id,
        ).where(Recipient.order_id == order_id)
        url = self.session.get_bind().engine.url
        if on_sqlite:
            return pl.DataFrame(_sqlite_read(url, q)).cast(LEDGER)  # type: ignore[arg-type]
        halves = [q.where(Recipient.batch % 2 == i) for i in (0, 1)]
        frame = pl.DataFrame(_postgresql_read(url, halves))
        frame = frame.with_columns(pl.col("submitted_ms", "final_ms").dt.epoch("ms"))
        return frame.cast(LEDGER)  # type: ignore[arg-type]

    def opt_outs(self, start: datetime, end: datetime) -> pl.DataFrame:
        """STOP replies and STOP-link visits made between `start` and `end` (any number): the
        caller keeps those of its recipients. Columns phone_hmac, reason."""
        q = select(Suppression.phone_hmac, Suppression.reason).where(
            Suppression.created_at >= start,
            Suppression.created_at <= end,
            Suppression.reason.in_(STOP_KINDS),
        )
        rows = self.session.execute(q).all()
        return pl.DataFrame(
            [(bytes(h), str(r)) for h, r in rows],
            schema={"phone_hmac": pl.Binary, "reason": pl.String},
            orient="row",
        )

    def last_submission(self, order_id: str) -> datetime | None:
        """The last submission to one of the order's own recipients. The control numbers are
        left out in the aggregate, not in the WHERE clause: a range on the prospect id would
        lead SQLite through the (order_id, prospect_id) index, one random row read per
        recipient (ten times slower than the batch index's near-sequential order)."""
        mine = case((Recipient.prospect_id >= 0, Recipient.submitted_at))
        q = select(func.max(mine)).where(Recipient.order_id == order_id)
        return _aware(self.session.scalar(q))

    def orders_with_status(self, status: str) -> list[str]:
        q = select(Order.id).where(Order.status == status).order_by(Order.send_at)
        return list(self.session.scalars(q))

    def tallied(self, order_id: str) -> bool:
        """Has the order tallies (planned since they are kept)?"""
        q = select(PeopleTally.id).where(PeopleTally.order_id == order_id).limit(1)
        return self.session.scalar(q) is not None

    def cells(self, order_id: str) -> list[Cell]:
        """The order's outcome tallies, summed over its batches: a few hundred rows."""
        t = OutcomeTally
        keys = [t.control, t.calendar, t.status, t.error, t.submitted_bin, t.final_bin]
        q = (
            select(
                *keys,
                func.sum(t.n),
                func.sum(t.parts),
                func.min(t.first_ms),
                func.max(t.last_ms),
                func.max(t.last_final_ms),
            )
            .where(t.order_id == order_id)
            .group_by(*keys)
        )
        rows: Any = self.session.execute(q)  # mixed column types
        return [
            Cell(bool(c), str(cal), str(st), e, b, f, int(n), int(p), first, last, fin)
            for c, cal, st, e, b, f, n, p, first, last, fin in rows
        ]

    def people(self, order_id: str) -> list[tuple[str, str, int]]:
        """(department, sex, recipients) of the order's own recipients."""
        t = PeopleTally
        q = (
            select(t.department, t.sex, func.sum(t.n))
            .where(t.order_id == order_id)
            .group_by(t.department, t.sex)
        )
        return [(str(d), str(x), int(n)) for d, x, n in self.session.execute(q)]

    def ages(self, order_id: str) -> dict[str, int] | None:
        """The order's own recipients per age band on the send day, as tallied at planning;
        None when the order was tallied without them (planned before migration 0014)."""
        t = PeopleTally
        q = select(t.age_band, func.sum(t.n)).where(t.order_id == order_id).group_by(t.age_band)
        rows = self.session.execute(q).all()
        if not rows or any(band is None for band, _ in rows):
            return None
        return {str(band): int(n) for band, n in rows}

    def prospect_ids(self, order_id: str) -> pl.Series:
        """The order's own recipients' prospect ids (read from the (order, prospect) index
        alone), for the birth dates of the base."""
        q = select(Recipient.prospect_id).where(
            Recipient.order_id == order_id, Recipient.prospect_id >= 0
        )
        return self._read(q).to_series().cast(pl.Int64).rename("prospect_id")

    def contacted_stops(
        self,
        order_id: str,
        stops: tuple[datetime, datetime],
        contacts: tuple[datetime, datetime],
        hidden: Sequence[str],
    ) -> list[bytes]:
        """The phone HMACs that opted out within `stops` (as `opt_outs`) and that the order
        contacted within `contacts` (its contact history: a row per recipient the message was
        handed to, or perhaps handed to), once per recipient, less those of the `hidden`
        calendars. One pass over the window's entries of the (sent_at, phone_hmac) index (a
        million for a million recipients, no table row read), then the order of the few found
        checked by primary key: an index led by the HMAC would make the lookup cheaper, but
        would cost every send a random insert per message (docs/benchmarks.md)."""
        h = ContactEvent
        stopped = select(Suppression.phone_hmac).where(
            Suppression.created_at >= stops[0],
            Suppression.created_at <= stops[1],
            Suppression.reason.in_(STOP_KINDS),
        )
        contacted = select(h.id).where(
            h.sent_at >= contacts[0], h.sent_at <= contacts[1], h.phone_hmac.in_(stopped)
        )
        q = select(h.phone_hmac).where(h.id.in_(contacted), h.order_id == order_id)
        found = [bytes(m) for m in self.session.scalars(q)]
        if not hidden or not found:
            return found
        batches = select(Batch.number).where(Batch.order_id == order_id, Batch.calendar.in_(hidden))
        q = select(Recipient.phone_hmac).where(
            Recipient.order_id == order_id,
            Recipient.batch.in_(batches),  # the (order, batch, status) index: small waves
        )
        mine = Counter(found)
        hid = Counter(m for m in map(bytes, self.session.scalars(q)) if m in mine)
        return list((mine - hid).elements())

    def hmac_index(self, order_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The order's recipients' HMAC prefixes (sorted, uint64) and their prospect ids, as
        written at planning; None for an order planned before they were (migration 0018)."""
        q = (
            select(HmacIndex.prefixes, HmacIndex.prospect_ids)
            .where(HmacIndex.order_id == order_id)
            .order_by(HmacIndex.part)
        )
        rows = self.session.execute(q).all()
        if not rows:
            return None
        prefixes = np.concatenate([np.frombuffer(p, dtype="<u8") for p, _ in rows])
        ids = np.concatenate([np.frombuffer(i, dtype="<i8") for _, i in rows])
        return prefixes.astype(np.uint64, copy=False), ids.astype(np.int64, copy=False)

    def contacted_of(
        self, order_id: str, prospect_ids: Sequence[int], hidden: Sequence[str]
    ) -> list[bytes]:
        """The phone HMACs of those of `prospect_ids` the order contacted (as its contact
        history has them), outside the `hidden` calendars: a few thousand rows read through
        the (order_id, prospect_id) index."""
        r = Recipient
        contacted = or_(
            r.status.in_(_CONTACTED), and_(r.status == R.failed, r.submitted_at.is_not(None))
        )
        found: list[bytes] = []
        for i in range(0, len(prospect_ids), _IN_LIST):
            q = select(r.phone_hmac).where(
                r.order_id == order_id,
                r.prospect_id.in_(list(prospect_ids[i : i + _IN_LIST])),
                contacted,
            )
            if hidden:
                q = q.where(r.calendar.not_in(list(hidden)))
            found += [bytes(m) for m in self.session.scalars(q)]
        return found

    def _read(self, q: ClauseElement) -> pl.DataFrame:
        """One statement's rows as a frame, through ADBC (a million rows scanned, a few
        returned: ADBC's SQLite is newer and faster at it than the one Python bundles)."""
        url = self.session.get_bind().engine.url
        if self.session.get_bind().dialect.name == "sqlite":
            return pl.DataFrame(_sqlite_read(url, q))
        return pl.DataFrame(_postgresql_read(url, [q]))
