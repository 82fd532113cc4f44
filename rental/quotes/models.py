from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
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
