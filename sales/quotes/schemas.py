from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from sales.pricing.schemas import Price


class BreakdownCell(BaseModel):
    value: str
    label: str
    count: int | None = Field(
        description="null when suppressed (under the minimum size, or "
        "hidden so that the others cannot be subtracted to reveal it)"
    )
    suppressed: bool


class QuoteOut(BaseModel):
    """A quote as a client sees it. Never carries the exact count."""

    id: str
    criteria: dict[str, Any]
    snapshot: str
    shown_count: int | None = Field(
        description="weighted count (docs/guide.md), rounded; null below minimum"
    )
    below_minimum: bool
    minimum_segment_size: int
    orderable: bool
    breakdowns: dict[str, list[BreakdownCell]]
    price: Price | None = Field(description="for the shown count, one SMS segment per message")
    created_at: datetime
    expires_at: datetime
    expired: bool


class QuoteStaffOut(QuoteOut):
    """A quote as an account manager sees it."""

    exact_count: int


class NearQuote(BaseModel):
    """An earlier quote whose segment differs from the flagged one by a small group."""

    quote_id: str
    organisation_id: int
    organisation: str
    another_organisation: bool = Field(
        description="asked by another organisation than the flagged quote: a hint of collusion"
    )
    criteria: dict[str, Any]
    created_at: datetime
    difference: int = Field(
        description="exact number of eligible prospects in one segment and not in the other "
        "(at least 1, under the minimum segment size), counted when the audit ran"
    )
    flagged_at: datetime


class FlaggedQuote(BaseModel):
    """A quote that, with an earlier one, isolates fewer people than the minimum segment size."""

    quote_id: str
    organisation_id: int
    organisation: str
    criteria: dict[str, Any]
    snapshot: str
    created_at: datetime
    near: list[NearQuote]


class OrganisationFlags(BaseModel):
    organisation_id: int
    organisation: str
    flags: int = Field(description="pairs flagged for its quotes of the last `window_days` days")
    with_other_organisations: int = Field(
        description="of those, pairs with another organisation's quote"
    )
    last_flagged_quote_at: datetime


class QuoteAuditList(BaseModel):
    """Quotes flagged as attack-like (newest first) and the flags per organisation."""

    items: list[FlaggedQuote]
    limit: int
    offset: int
    window_days: int
    organisations: list[OrganisationFlags]
