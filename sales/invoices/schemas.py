from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field


class PenaltyOut(BaseModel):
    """Late-payment penalties owed on an invoice paid late or still unpaid after its due date."""

    days_late: int
    annual_rate_percent: Decimal = Field(description="ECB rate of the half-year + 10 points")
    interest_cents: int
    recovery_indemnity_cents: int
    total_cents: int
    computed_on: date


class InvoiceOut(BaseModel):
    id: str
    number: str
    kind: str = Field(description="deposit, balance or credit_note")
    order_id: str
    organisation: str
    corrects: str | None = Field(description="number of the invoice a credit note corrects")
    description: str
    lines: list[dict[str, Any]]
    amount_excl_vat_cents: int
    vat_rate: Decimal
    vat_cents: int
    amount_incl_vat_cents: int
    currency: str = "EUR"
    issued_at: datetime
    due_date: date
    status: str = Field(
        description="invoices: unpaid, partially_paid, paid, cancelled; credit notes: "
        "refund_due, refunded, applied"
    )
    paid_cents: int
    outstanding_cents: int
    paid_on: date | None
    penalty: PenaltyOut | None


class InvoiceList(BaseModel):
    items: list[InvoiceOut]
    limit: int
    offset: int
