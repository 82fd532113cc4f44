"""SQLAlchemy 2 engine, declarative base and the unit of work.

Services never commit: `unit_of_work()` (a request, a CLI command, a task) owns the transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy
from pydantic import TypeAdapter
from sqlalchemy import DateTime, Engine, MetaData, Text, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from kit.settings import get_settings

T = TypeVar("T")
log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database layer")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


J = TypeVar("J")


class JSONOf(TypeDecorator[J], Generic[J]):
    """A JSON document stored as text and read back as a typed value (a pydantic model, a
    `dict[str, int]`...), validated both ways: no call site parses or dumps it by hand.
    `JSONOf(dict[str, int])`, `JSONOf(Price)`; the column stays TEXT on every backend."""

    impl = Text
    cache_ok = True

    def __init__(self, of: Any) -> None:
        super().__init__()
        self.of = of
        self._adapter: TypeAdapter[J] = TypeAdapter(of)

    def process_bind_param(self, value: J | None, dialect: Any) -> str | None:
        if value is None:
            return None
        checked = self._adapter.validate_python(value)
        return self._adapter.dump_json(checked).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> J | None:
        if value is None:
            return None
        return self._adapter.validate_json(value)

    def __repr__(self) -> str:  # alembic autogenerate and error messages
        return "Text()"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL never corrupts the database; a power cut may lose the last commits.
    # (Production runs on PostgreSQL.)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


@lru_cache(maxsize=4)
def _engine_for(url: str, size: int, overflow: int, timeout: float) -> Engine:
    # Sized for the requests the API admits at once (kit/admission.py); a request that still
    # finds no connection gives up after the timeout (503), it does not hang.
    pool = {"pool_size": size, "max_overflow": overflow, "pool_timeout": timeout}
    # hide_parameters: bound values (prospect ids, HMACs) never appear in error messages or logs.
    # sqlalchemy.create_engine is looked up at each call: tracing wraps it (kit/tracing.py).
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        memory = not path or path == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sqlalchemy.create_engine(
            url,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
            **({} if memory else pool),
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sqlalchemy.create_engine(url, pool_pre_ping=True, hide_parameters=True, **pool)


def get_engine() -> Engine:
    s = get_settings()
    db = s.database
    return _engine_for(s.sqlalchemy_url, db.pool_size, db.pool_overflow, db.pool_timeout_seconds)


def dispose_engine() -> None:
    """Close the pooled connections of the engine this process uses, if it made one, and forget
    it: the next `get_engine()` builds one from the settings of that moment (a test that moved
    to another database, a process that changed its settings)."""
    if _engine_for.cache_info().currsize:
        get_engine().dispose()
    _engine_for.cache_clear()
    _sessions_of.cache_clear()


@lru_cache(maxsize=4)
def _sessions_of(engine: Engine) -> sessionmaker[Session]:
    # One factory per engine: a new sessionmaker is a new Session class, whose events SQLAlchemy
    # sets up again at its first session (a fraction of a millisecond per transaction).
    return sessionmaker(bind=engine, expire_on_commit=False)


def session_factory() -> sessionmaker[Session]:
    return _sessions_of(get_engine())


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: committed when the block succeeds, rolled back when it raises."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def transient(failure: OperationalError) -> bool:
    """A failure that another attempt may not meet: SQLite's lock (busy timeout), PostgreSQL's
    serialization failure or deadlock, a dropped connection. Not a missing table or a full
    disk."""
    if failure.connection_invalidated:
        return True
    sqlstate = getattr(failure.orig, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate) in ("40001", "40P01")
    message = str(failure.orig).lower()
    return "database is locked" in message or "database is busy" in message


def retried(work: Callable[[Session], T], attempts: int = 4, first_wait: float = 0.5) -> T:
    """`work` in one transaction, run again (waiting 0.5 s, 1 s, 2 s...) when the database gave
    up on it for a passing reason (`transient`). A failed attempt is rolled back whole, so it runs
    from the start each time. For what must not be lost: the record of messages the carrier
    took, their receipts."""
    attempt = 1
    while True:
        try:
            with unit_of_work() as session:
                return work(session)
        except OperationalError as failure:
            if attempt >= attempts or not transient(failure):
                raise
            wait = first_wait * 2 ** (attempt - 1)
            # The statement and its values are hidden (hide_parameters): no number or id here.
            log.warning(
                "database busy (%s): attempt %d in %.1f s",
                type(failure.orig).__name__,
                attempt + 1,
                wait,
            )
            time.sleep(wait)
            attempt += 1


def executemany(session: Session, stmt: Any, rows: Sequence[dict[str, Any]]) -> int:
    """`stmt` once for each of `rows`, in one executemany handed to the driver as it is.
    SQLAlchemy's executemany builds and converts every row's parameters anew (about half of
    the time of recording a chunk of 1,000 sent messages); here the statement is compiled
    once, the values it holds itself (`.values(status=..., at=now)`) are converted once, and
    the rows' own values, named as the statement's bindparams, go to the driver untouched:
    they must be plain values that need no conversion (ints, text, bytes, not enums or
    datetimes). No expanding IN: executemany refuses one. Returns the rows changed, as the
    driver counts them (-1 when it cannot tell)."""
    if not rows:
        return 0
    conn = session.connection()
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect)
    fixed: dict[str, Any] = {}
    for bind, name in compiled.bind_names.items():
        if name not in rows[0]:
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            fixed[name] = process(bind.value) if process else bind.value
    params: list[Any]
    if compiled.positiontup is not None:  # SQLite: ? placeholders, in this order
        getter = itemgetter(*compiled.positiontup)
        one = len(compiled.positiontup) == 1
        params = [(getter(fixed | row),) if one else getter(fixed | row) for row in rows]
    else:  # psycopg: named placeholders
        params = [fixed | row for row in rows]
    return int(conn.exec_driver_sql(compiled.string, params).rowcount)
