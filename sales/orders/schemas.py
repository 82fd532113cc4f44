from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from kit.clock import Day, Instant
from kit.fields import Flag, WholeNumber
from kit.text import SafeText, no_control_characters
from sales.invoices.schemas import InvoiceOut
from sales.messages.service import MAX_MESSAGE_LENGTH
from sales.pricing.schemas import Price

# The sender rule as the API document tells it; sales.messages.check_sender enforces it (and
# refuses generic names such as INFO or PROMO, which no pattern says).
SENDER_FORM = r"^[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*$"
Sender = Annotated[
    str,
    AfterValidator(no_control_characters),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 3,
            "maxLength": 11,
            "pattern": SENDER_FORM,
            "description": "the advertiser's brand: 3-11 letters or digits, one letter at least; "
            "not a generic name (INFO, PROMO...)",
        }
    ),
]


class OrderCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "quote_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                    "quantity": 1000,
                    "message": "Soldes d'hiver : -20% sur tout le magasin avec le code HIVER",
                    "sender": "ACME",
                    "send_at": "2027-01-12T10:00:00+01:00",
                }
            ]
        },
    )

    quote_id: SafeText = Field(max_length=64)
    quantity: WholeNumber = Field(
        ge=0, le=10**9, description="at most the quote's shown count, at least the minimum"
    )
    message: SafeText = Field(max_length=MAX_MESSAGE_LENGTH)
    sender: Sender
    send_at: Instant = Field(
        description="ISO 8601; a time without offset is Europe/Paris time. From now (a few "
        "minutes' clock difference allowed) to the horizon (365 days by default) ahead"
    )


class OrderRevision(BaseModel):
    """A new message or sender (after a rejection, say); the price may not change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"message": "Soldes : -20% avec le code HIVER"}]},
    )

    message: SafeText | None = Field(default=None, max_length=MAX_MESSAGE_LENGTH)
    sender: Sender | None = None


class PaymentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reference": "VIR-2027-000123", "amount_cents": 36000}]},
    )

    reference: SafeText = Field(
        min_length=1, max_length=80, pattern=r"^[\w./:#-]+$", description="the bank's reference"
    )
    amount_cents: WholeNumber = Field(gt=0, description="amount received, VAT included, in cents")
    received_on: Day | None = Field(
        default=None, description="default: today (Paris); never after today"
    )


class Reason(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "the sender name is not the advertiser's"}]},
    )

    reason: SafeText = Field(min_length=3, max_length=500)


class Cancellation(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "the campaign is postponed"}]}
    )

    reason: SafeText | None = Field(default=None, max_length=500)
    refund_deposit: Flag | None = Field(
        default=None,
        description="account managers only: refund the deposit (default: the contract's rule)",
    )


class Amount(BaseModel):
    amount_excl_vat_cents: int
    vat_cents: int
    amount_incl_vat_cents: int
    currency: str = "EUR"


class MessageCheck(BaseModel):
    encoding: str = Field(description="GSM-7 or UCS-2")
    characters: int = Field(
        description="septets (GSM-7) or UTF-16 units (UCS-2), mentions included"
    )
    segments: int
    max_segments: int
    by_zone: dict[str, dict[str, Any]]
    preview: str = Field(description="the message as sent, variables at their longest")
    note: str = Field(description="what the encoding and length mean for the price")


class ContentReviewOut(BaseModel):
    status: str = Field(description="pending, approved or rejected")
    note: str | None


class EventOut(BaseModel):
    at: datetime
    action: str
    by: str
    from_status: str | None
    to_status: str | None
    details: dict[str, Any]


class OrderOut(BaseModel):
    id: str
    status: str
    quote_id: str
    quantity: int
    message: str
    sender: str
    send_at: datetime
    encoding: str
    characters: int
    segments: int
    message_check: MessageCheck
    price: Price
    total: Amount
    deposit: Amount
    deposit_paid: bool
    content_review: ContentReviewOut
    reservation: str = Field(description="none, complete or short (on hold: volume)")
    hold_reason: str | None
    offered_quantity: int | None = Field(
        description="on hold for volume: the quantity that can be sent instead"
    )
    cancellation_requested: bool
    invoices: list[str] = Field(description="ids of the order's invoices and credit notes")
    created_at: datetime
    events: list[EventOut]
    waves: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the send plan: one wave per recipients' time zone and holiday calendar",
    )


class OrderStaffOut(OrderOut):
    organisation: str
    reserved: int
    quote_exact_count: int


class OrderList(BaseModel):
    items: list[OrderOut | OrderStaffOut]
    limit: int
    offset: int


class PaymentOut(BaseModel):
    reference: str
    amount_cents: int
    received_on: date
    invoice_id: str
    replayed: bool = Field(description="true: this reference was recorded before, nothing changed")


class PaymentRecorded(BaseModel):
    payment: PaymentOut
    invoice: InvoiceOut
    order: OrderStaffOut | OrderOut
