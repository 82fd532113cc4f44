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
