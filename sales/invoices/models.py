"""Invoices (deposit, balance) and credit notes, numbered without gaps, and payments."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, JSONOf, UTCDateTime


class InvoiceKind(enum.StrEnum):
    deposit = "deposit"
    balance = "balance"
    credit_note = "credit_note"


class InvoiceStatus(enum.StrEnum):
    # invoices
    unpaid = "unpaid"
    partially_paid = "partially_paid"
    paid = "paid"
    cancelled = "cancelled"
    # credit notes: money to pay back, paid back, or applied (it cancels an unpaid invoice:
    # nothing changes hands)
    refund_due = "refund_due"
    refunded = "refunded"
    applied = "applied"


# An invoice still awaiting (the rest of) its payment.
OPEN = frozenset({InvoiceStatus.unpaid, InvoiceStatus.partially_paid})


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("year", "sequence"),
        Index("ix_invoices_org_issued", "organisation_id", "issued_at"),
        Index("ix_invoices_order_id", "order_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # e.g. 2026-000042
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[InvoiceKind] = mapped_column(Enum(InvoiceKind, native_enum=False, length=12))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    corrects_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"), nullable=True)
    description: Mapped[str] = mapped_column(Text)
    # What is billed, for the document: [{"label": ..., "amount_excl_vat_cents": ...}, ...]
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONOf(list[dict[str, Any]]))
    amount_excl_vat_cents: Mapped[int] = mapped_column(Integer)
    vat_rate: Mapped[str] = mapped_column(String(8))  # Decimal as text
    vat_cents: Mapped[int] = mapped_column(Integer)
    amount_incl_vat_cents: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[InvoiceStatus] = mapped_column(Enum(InvoiceStatus, native_enum=False, length=16))
    paid_cents: Mapped[int] = mapped_column(Integer, default=0)
    paid_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(80), unique=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    amount_cents: Mapped[int] = mapped_column(Integer)
    received_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
