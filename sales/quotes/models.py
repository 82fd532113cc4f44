from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class Quote(Base):
    """A count and a price for a segment, frozen: canonical criteria, snapshot, true and shown
    counts, protected breakdowns, price and expiry."""

    __tablename__ = "quotes"
    __table_args__ = (Index("ix_quotes_org_created", "organisation_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    snapshot_version: Mapped[str] = mapped_column(String(16))
    criteria: Mapped[str] = mapped_column(Text)  # canonical JSON
    exact_count: Mapped[int] = mapped_column(Integer)  # internal: never shown to a client
    shown_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    breakdowns: Mapped[str] = mapped_column(Text)  # JSON of the protected (shown) breakdowns
    zone_mix: Mapped[str] = mapped_column(Text)  # JSON {zone: exact count}, for order pricing
    price: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON Price for shown_count
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QuoteBudgetUse(Base):
    """Quotes an organisation has used of its daily budget, per day (Paris). One row per
    organisation and day, taken one quote at a time by an atomic conditional increment, so
    concurrent requests on any number of processes never go past the budget."""

    __tablename__ = "quote_budget_use"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    used: Mapped[int] = mapped_column(Integer)
