"""Named locks and gapless counters in the service database, portable to SQLite and PostgreSQL.

Taking a lock is a write: `UPDATE named_locks ... WHERE name = ?`. On PostgreSQL that row lock
is held until the transaction ends; on SQLite the first write of a transaction takes the
database's write lock. Either way every read that follows in the transaction sees what the
previous holder committed, which is what makes "read the reservations, then reserve" race-free
across processes. Counters work the same way and roll back with the transaction, so numbers
handed out by `next_value` have no gaps.
"""

from __future__ import annotations

import secrets

from sqlalchemy import BigInteger, String, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from kit.db import Base


class Counter(Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


def next_value(session: Session, name: str) -> int:
    """Increment and return the counter `name` (1 for the first call); holds it until commit."""
    stmt = update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
    value = session.execute(stmt.returning(Counter.value)).scalar_one_or_none()
    if value is not None:
        return int(value)
    try:
        with session.begin_nested():
            session.execute(insert(Counter).values(name=name, value=1))
        return 1
    except IntegrityError:  # another transaction created it first: increment theirs
        return int(session.execute(stmt.returning(Counter.value)).scalar_one())


def touch(session: Session, name: str) -> int:
    """Set the counter `name` to a fresh random value: a stamp that says "changed". Unlike an
    increment, a value written by a transaction that rolls back is never written again, so a
    reader that saw it uncommitted cannot mistake a later change for it."""
    value = secrets.randbits(62)
    stmt = update(Counter).where(Counter.name == name).values(value=value)
    if getattr(session.execute(stmt), "rowcount", 0):
        return value
    try:
        with session.begin_nested():
            session.execute(insert(Counter).values(name=name, value=value))
    except IntegrityError:
        session.execute(stmt)
    return value


def raise_to(session: Session, name: str, value: int) -> None:
    """Set the counter `name` to `value` if it is lower (a high-water mark); the caller holds
    a lock that orders the writers."""
    stmt = update(Counter).where(Counter.name == name, Counter.value < value).values(value=value)
    if getattr(session.execute(stmt), "rowcount", 0) or current_value(session, name):
        return
    try:
        with session.begin_nested():
            session.execute(insert(Counter).values(name=name, value=value))
    except IntegrityError:
        session.execute(stmt)


def current_value(session: Session, name: str) -> int:
    """The counter's last value (0 before the first increment); takes no lock."""
    value = session.scalar(select(Counter.value).where(Counter.name == name))
    return int(value or 0)


def acquire(session: Session, name: str) -> None:
    """Hold the lock `name` until the transaction ends."""
    next_value(session, f"lock:{name}")
