"""All SQL of the reports. The report reads an order's ledger once, as Arrow (ADBC: no Python
object per row), and aggregates it in memory (reports/build.py): one pass instead of a grouped
query per figure. The per-recipient columns read (prospect id, phone HMAC) serve only to join
the base's birth dates and the opt-outs; they never leave reports/build.py. Values are bound;
the caller owns the session's transaction (the ledger read is one statement, one snapshot)."""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import BigInteger, case, cast, func, literal_column, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from dispatch.models import Recipient
from rental.orders.models import Order
from segmentation.models import Suppression

HANDED_OVER = ("submitted", "delivered", "failed", "expired")  # the `submitted` count
STOP_KINDS = ("stop_reply", "stop_link")
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
    "phone_hmac": pl.Binary,
}


def _aware(value: datetime | str | None) -> datetime | None:
    """Aggregates (min, max) bypass the column type: SQLite hands back naive UTC text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _arrow_read(url: URL, stmt: ClauseElement) -> pl.DataFrame:
    """A query's result through ADBC, straight into Arrow: a million rows cost what the
    database takes to produce them, not a million Python tuples. A connection of its own
    (read-only on SQLite), closed at once."""
    connect: Any
    options: dict[str, str] = {}
    if url.get_backend_name() == "sqlite":
        import adbc_driver_sqlite
        import adbc_driver_sqlite.dbapi as sqlite_adbc

        if not url.database or url.database == ":memory:":
            raise RuntimeError("reports read the ledger from a database file, not :memory:")
        uri = Path(url.database).resolve().as_uri() + "?mode=ro"
        connect = sqlite_adbc.connect
        compiled = stmt.compile(dialect=sqlite.dialect(), compile_kwargs=_EXPANDED)
        # Rows per Arrow batch: the default (1,024) makes a thousand batches of a million rows.
        options[adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value] = "16384"
    else:
        import adbc_driver_postgresql.dbapi as postgresql_adbc

        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
        connect = postgresql_adbc.connect
        # ADBC's PostgreSQL driver takes $1, $2... placeholders (no DB-API module involved).
        dialect = PGDialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
        compiled = stmt.compile(dialect=dialect, compile_kwargs=_EXPANDED)
    order = typing.cast(SQLCompiler, compiled).positiontup or []
    params = [compiled.params[name] for name in order]
    with connect(uri) as conn, conn.cursor() as cur:
        if options:
            cur.adbc_statement.set_options(**options)
        cur.execute(compiled.string, params)
        table = cur.fetch_arrow_table()
    return pl.DataFrame(table)


class ReportRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def ledger(self, order_id: str, stops_since: datetime) -> pl.DataFrame:
        """Every ledger row of the order, control numbers included (negative prospect ids),
        with the columns of LEDGER: one statement, so one consistent snapshot.

        Each backend gets the select list it produces fastest; the frame is the same. SQLite
        turns its timestamps (text) into milliseconds itself and hands every phone HMAC over
        (cheap in process). PostgreSQL sends timestamps as they are (converted here) and only
        the HMACs that opted out since `stops_since` (a column costs some 250 ms per million
        rows on the wire): the caller joins the HMACs with the opt-outs of its window, which
        starts later."""
        sqlite = self.session.get_bind().dialect.name == "sqlite"
        times: list[Any] = [Recipient.submitted_at, Recipient.final_at]
        hmac: Any = Recipient.phone_hmac
        if sqlite:
            times = [
                cast(func.round(func.unixepoch(t, literal_column("'subsec'")) * 1000), BigInteger)
                for t in times
            ]
        else:
            stopped = select(Suppression.phone_hmac).where(
                Suppression.created_at >= stops_since, Suppression.reason.in_(STOP_KINDS)
            )
            hmac = case((Recipient.phone_hmac.in_(stopped), Recipient.phone_hmac))
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
            hmac.label("phone_hmac"),
        ).where(Recipient.order_id == order_id)
        frame = _arrow_read(self.session.get_bind().engine.url, q)
        if not sqlite:
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
