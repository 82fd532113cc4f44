"""The stores eligibility reads: global suppression, contact history, reservations, and the
customers' exclusion files (written by sales/exclusions, applied to counts and draws here).

Suppression and contact history are keyed by the HMAC of the number, so they follow a person
across base refreshes (a prospect removed then collected again keeps their opt-out). Both are
insert-only: an opt-out is final.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
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


class ExclusionFile(Base):
    """A customer's exclusion file ("fichier repoussoir"): no number, only counts and a digest
    of its members (a new digest when it is replaced: what the engine's cache is keyed by)."""

    __tablename__ = "exclusion_files"
    __table_args__ = (Index("ix_exclusion_files_org", "organisation_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(120))
    form: Mapped[str] = mapped_column(String(12))  # numbers | sha256 (hashed by the customer)
    lines: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)  # distinct valid numbers or hashes
    rejected: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When its members were last matched to the base's HMACs (a file of numbers: at upload; a
    # hashed one: by the worker). None: not usable in a count or a draw yet.
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A hashed file: the snapshot version its HMACs were found in. Only that snapshot's counts
    # and draws may use them; a refresh brings people the match never saw (matched again by
    # the worker). None for a file of numbers: its HMACs are matched against every snapshot.
    matched_snapshot: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ExclusionChunk(Base):
    """Members of an exclusion file, many per row (a 5-million-line file is a few hundred rows,
    written and read in a second): 32-byte keys end to end, sorted within a chunk. `kind`:
    "hmac" (the opt-out HMAC of the normalised number) or "sha256" (the customer's salted hash,
    matched to HMACs in the worker: sales/exclusions/tasks.py)."""

    __tablename__ = "exclusion_chunks"
    __table_args__ = (Index("ix_exclusion_chunks_file", "file_id", "kind", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("exclusion_files.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    seq: Mapped[int] = mapped_column(Integer)
    keys: Mapped[bytes] = mapped_column(LargeBinary())
