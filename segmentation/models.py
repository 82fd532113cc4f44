"""The stores eligibility reads: global suppression, contact history, reservations.

Suppression and contact history are keyed by the HMAC of the number, so they follow a person
across base refreshes (a prospect removed then collected again keeps their opt-out). Both are
insert-only: an opt-out is final.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class Suppression(Base):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone_hmac: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    reason: Mapped[str] = mapped_column(String(40))  # stop_reply, stop_link, request, complaint
    source: Mapped[str | None] = mapped_column(String(80))  # carrier or order reference
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ContactEvent(Base):
    __tablename__ = "contact_history"
    __table_args__ = (Index("ix_contact_history_sent_at_hmac", "sent_at", "phone_hmac"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone_hmac: Mapped[bytes] = mapped_column(LargeBinary(32))
    order_id: Mapped[str] = mapped_column(String(40))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Reservation(Base):
    __tablename__ = "reservations"
    # Read whole while held, or by order: no index on the send time (each one cost a draw a
    # million entries to write).
    __table_args__ = (UniqueConstraint("order_id", "prospect_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40))
    prospect_id: Mapped[int] = mapped_column(BigInteger)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
