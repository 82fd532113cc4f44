from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, JSONOf, UTCDateTime
from sales.pricing.schemas import Price
from sales.quotes.schemas import BreakdownCell
from segmentation.criteria import Criteria, canonical_text


class CanonicalCriteria(JSONOf[dict[str, Any]]):
    """Criteria in canonical form (`Criteria.canonical()`), stored as the text of
    `Criteria.canonical_json()`: sorted keys, no spaces, so the same segment always reads the
    same. Read back as that document, not validated again: a quote stays readable whatever
    the catalogue and its limits become; what acts on it validates it (`Criteria`)."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(dict[str, Any])

    @staticmethod
    def document(criteria: Criteria) -> dict[str, Any]:
        """The criteria as the column reads them back (keys sorted at every level), so that a
        quote just recorded shows them as it will later."""
        doc: dict[str, Any] = json.loads(criteria.canonical_json())
        return doc

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return canonical_text(value)


class Quote(Base):
    """A count and a price for a segment, frozen: canonical criteria, snapshot, true and shown
    counts, protected breakdowns, price and expiry."""

    __tablename__ = "quotes"
    __table_args__ = (
        Index("ix_quotes_org_created", "organisation_id", "created_at"),
        # The audit's two look-ups: quotes not audited yet, oldest first; quotes of a size.
        Index("ix_quotes_audit_pending", "audited_at", "created_at"),
        Index("ix_quotes_exact_count", "exact_count"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    snapshot_version: Mapped[str] = mapped_column(String(16))
    criteria: Mapped[dict[str, Any]] = mapped_column(CanonicalCriteria())
    exact_count: Mapped[int] = mapped_column(Integer)  # internal: never shown to a client
    shown_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The protected (shown) breakdowns.
    breakdowns: Mapped[dict[str, list[BreakdownCell]]] = mapped_column(
        JSONOf(dict[str, list[BreakdownCell]])
    )
    # {zone: protected count}, for order pricing.
    zone_mix: Mapped[dict[str, int]] = mapped_column(JSONOf(dict[str, int]))
    price: Mapped[Price | None] = mapped_column(JSONOf(Price), nullable=True)  # for shown_count
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the audit compared it with earlier quotes (sales/quotes/audit.py); None until then.
    audited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class QuoteFlag(Base):
    """Two quotes whose segments differ by fewer than k people (and by at least one): the
    later one answered after the earlier one, possibly of another organisation. Broker-only:
    `difference` is exact."""

    __tablename__ = "quote_flags"
    __table_args__ = (
        UniqueConstraint("quote_id", "earlier_quote_id", name="uq_quote_flags_pair"),
        Index("ix_quote_flags_org_created", "organisation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    quote_id: Mapped[str] = mapped_column(ForeignKey("quotes.id"))
    earlier_quote_id: Mapped[str] = mapped_column(ForeignKey("quotes.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    earlier_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    difference: Mapped[int] = mapped_column(Integer)  # |A xor B|, exact: never shown to a client
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # when the audit flagged it


class QuoteBudgetUse(Base):
    """Quotes an organisation has used of its daily budget, per day (Paris). One row per
    organisation and day, taken one quote at a time by an atomic conditional increment, so
    concurrent requests on any number of processes never go past the budget."""

    __tablename__ = "quote_budget_use"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    used: Mapped[int] = mapped_column(Integer)
