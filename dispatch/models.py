"""The per-recipient ledger of a send and its batches.

A recipient goes pending -> submitting -> submitted -> delivered | failed | expired; a recipient
left in `submitting` by a crash becomes `unknown`: it is never sent again and never billed.
`submitting` is kept without writing the row: a `pending` recipient at or below its batch's claim
watermark (Batch.claimed_to) is submitting (see LedgerRepository.in_flight).
The ledger holds the number only encrypted (as the base does) and its HMAC (for the contact
history and opt-outs); only the worker holds the key that opens it.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Enum,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.states import BatchStatus, CarrierState, RecipientStatus
from kit.db import Base, UTCDateTime
from sales.messages.service import STOP_TOKEN_LENGTH


def _status(kind: type[enum.StrEnum], length: int) -> Enum:
    """A status column: the enum's values as plain text, as they always were stored."""
    return Enum(kind, native_enum=False, length=length)


class Recipient(Base):
    """One recipient of one order. Control numbers (settings) ride along as rows with a
    negative prospect_id: outside the volume, the bill and the contact history."""

    __tablename__ = "dispatch_recipients"
    __table_args__ = (
        UniqueConstraint("order_id", "prospect_id"),
        # Not the status: a recipient changes status twice more after it is planned (submitted,
        # then its receipt), and each change would move its entry in this index. The claim
        # watermark finds the next recipients by id within the batch instead.
        Index("ix_dispatch_recipients_batch", "order_id", "batch"),
        Index("ix_dispatch_recipients_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(36))
    prospect_id: Mapped[int] = mapped_column(BigInteger)
    batch: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[str] = mapped_column(String(24))  # see dispatch.windows.Calendar.key
    department: Mapped[str] = mapped_column(String(3))
    sex: Mapped[str] = mapped_column(String(1))  # for the civility variable only
    stop_token: Mapped[str | None] = mapped_column(
        String(STOP_TOKEN_LENGTH), nullable=True, unique=True
    )
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_hmac: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[RecipientStatus] = mapped_column(
        _status(RecipientStatus, 12), default=RecipientStatus.pending
    )
    message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parts: Mapped[int] = mapped_column(Integer, default=0)  # SMS segments submitted
    error: Mapped[str | None] = mapped_column(String(40), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Batch(Base):
    __tablename__ = "dispatch_batches"
    __table_args__ = (UniqueConstraint("order_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(36))
    number: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[str] = mapped_column(String(24))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[BatchStatus] = mapped_column(
        _status(BatchStatus, 10), default=BatchStatus.pending
    )
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The run that holds the batch, and its last sign of life: a run silent for longer than
    # dispatch_stale_seconds is presumed dead, and a run that lost its batch stops.
    runner: Mapped[str | None] = mapped_column(String(16), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # After a transient carrier failure: not before this instant, with growing back-off.
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The claim watermark: the batch's recipients up to this ledger id are handed over or being
    # handed over. A run claims its next chunk by raising it (one row written, committed before
    # submitting), so a recipient still `pending` at or below it is in flight: recovered as
    # `unknown` after a crash, never claimed again. NULL: nothing claimed by watermark yet.
    claimed_to: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)


class EarlyReceipt(Base):
    """A delivery receipt that arrived before its submit response was recorded: kept until the
    message id appears in the ledger, then applied."""

    __tablename__ = "dispatch_early_receipts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[RecipientStatus] = mapped_column(_status(RecipientStatus, 12))  # a final one
    error: Mapped[str | None] = mapped_column(String(40), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MessagePart(Base):
    """One part of a concatenated message, with the carrier's id for it: receipts come per
    part. The recipient is delivered when every part is, failed or expired as soon as one
    part is."""

    __tablename__ = "dispatch_message_parts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recipient_id: Mapped[int] = mapped_column(Integer, index=True)
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[RecipientStatus] = mapped_column(
        _status(RecipientStatus, 12), default=RecipientStatus.submitted
    )
    error: Mapped[str | None] = mapped_column(String(40), nullable=True)


class CarrierStatus(Base):
    """What the last contacts with a carrier showed, shared by every worker and API process:
    `ok`, or `unavailable` since the first failure of a run of them (binds refused, gateway
    down...). Written by the workers, read by `GET /v1/health` and `GET /v1/carriers/status`."""

    __tablename__ = "carrier_status"

    carrier: Mapped[str] = mapped_column(String(30), primary_key=True)
    state: Mapped[CarrierState] = mapped_column(_status(CarrierState, 12))  # ok, unavailable
    since: Mapped[datetime] = mapped_column(UTCDateTime())  # in this state since
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OutcomeTally(Base):
    """How many of one batch's recipients share a calendar, status, error and five-minute bins
    of submission and receipt (control numbers apart): the ledger folded for the send report.
    Rebuilt from the batch's rows in the transaction that changes them (LedgerRepository
    .refresh_tallies), so it is always the ledger's state. Statuses are the report's: a
    recipient being handed over (`submitting`) still counts as pending. Times are milliseconds
    since 1970 as the report reads them (see dispatch.repository.epoch_ms)."""

    __tablename__ = "dispatch_outcome_tallies"
    __table_args__ = (Index("ix_dispatch_outcome_tallies_batch", "order_id", "batch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(36))
    batch: Mapped[int] = mapped_column(Integer)
    control: Mapped[bool] = mapped_column(Boolean)  # control numbers (negative prospect ids)
    calendar: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12))
    error: Mapped[str | None] = mapped_column(String(40), nullable=True)
    submitted_bin: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    final_bin: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    n: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)  # of those submitted
    first_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # submissions
    last_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_final_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # receipts


class PeopleTally(Base):
    """How many of an order's own recipients share a calendar, department, sex and age band:
    written once when the ledger is planned (these never change), for the report's breakdowns.
    The age band is the recipient's age on `ages_on`, the send day (Paris), from the birth date
    of the base the order was drawn from; both are None for an order planned before migration
    0014 (its report joins the base's birth dates, as before)."""

    __tablename__ = "dispatch_people_tallies"
    __table_args__ = (Index("ix_dispatch_people_tallies_order", "order_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(36))
    calendar: Mapped[str] = mapped_column(String(24))
    department: Mapped[str] = mapped_column(String(3))
    sex: Mapped[str] = mapped_column(String(1))
    age_band: Mapped[str | None] = mapped_column(String(8), nullable=True)  # or "unknown"
    ages_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    n: Mapped[int] = mapped_column(Integer)


class HmacIndex(Base):
    """One part of an order's own recipients' phone HMACs, for the report's opt-outs: the first
    8 bytes of each HMAC read as a big-endian number (`prefixes`, sorted), with the recipient's
    prospect id beside it (`prospect_ids`), both little-endian 64-bit arrays (read back without
    a conversion on this hardware). Written once when
    the ledger is planned (control numbers left out), so the report finds the window's STOPs
    among its recipients by a binary search instead of a pass over the contact history. An
    order planned before migration 0018 has none (its report reads the contact history)."""

    __tablename__ = "dispatch_hmac_index"
    __table_args__ = (UniqueConstraint("order_id", "part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(36))
    part: Mapped[int] = mapped_column(Integer)  # parts concatenated in this order stay sorted
    prefixes: Mapped[bytes] = mapped_column(LargeBinary)
    prospect_ids: Mapped[bytes] = mapped_column(LargeBinary)
