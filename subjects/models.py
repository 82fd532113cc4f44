"""Tables of the rights requests: one-time codes, staff requests and their audit trail.

Numbers are never stored: a challenge holds the number's HMAC (the opt-out key), the address
it came from as a keyed hash, and the code and tokens as keyed hashes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class ChallengeStatus(StrEnum):
    pending = "pending"  # asked; the worker has not looked yet
    sent = "sent"  # the number is in the base: a code went out
    absent = "absent"  # not in the base: nothing sent (never said to the asker)
    verified = "verified"  # the code was right: `access_hash` opens the record
    spent = "spent"  # too many wrong codes


class Challenge(Base):
    __tablename__ = "subject_challenges"
    __table_args__ = (
        Index("ix_subject_challenges_hmac_at", "phone_hmac", "created_at"),
        Index("ix_subject_challenges_address_at", "address_mac", "created_at"),
        Index("ix_subject_challenges_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    phone_hmac: Mapped[bytes] = mapped_column(LargeBinary(32))
    address_mac: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(10))
    code_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    access_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True, unique=True)
    access_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RequestKind(StrEnum):
    objection = "objection"  # art. 21: opt out, final
    erasure = "erasure"  # art. 17
    rectification = "rectification"  # art. 16: a human checks and corrects
    written = "written"  # anything else, or a request received by post or e-mail


class RequestStatus(StrEnum):
    done = "done"  # answered at once (objection, erasure)
    open = "open"  # waiting for the broker's staff
    closed = "closed"  # answered by staff


class SubjectRequest(Base):
    __tablename__ = "subject_requests"
    __table_args__ = (Index("ix_subject_requests_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone_hmac: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8))
    # What the person wrote (a rectification): read by staff only, never in a log line.
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)


class RequestAction(Base):
    """Every action on a request, by the person or by staff: the audit trail."""

    __tablename__ = "subject_request_actions"
    __table_args__ = (Index("ix_subject_request_actions_request", "request_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))  # "subject", "worker" or a staff user id
    action: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
