"""The send report as the API returns it. Counts are exact but `null` when hidden: under the
minimum count, or hidden with it so that it cannot be worked out by subtraction."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

Count = int | None


class Volumes(BaseModel):
    quantity_ordered: int = Field(description="the order's quantity (the customer's own figure)")
    recipients: Count = Field(description="after the send-time re-validation and top-up")
    submitted: Count = Field(description="handed to the carrier: the volume billed")
    delivered: Count
    failed: Count
    failed_by_reason: dict[str, Count]
    expired: Count = Field(description="the carrier gave up within the message's validity")
    awaiting_receipt: Count = Field(
        description="submitted, no receipt yet (in a final report: none came in the window)"
    )
    unknown: Count = Field(description="interrupted while handed over: never resent, not billed")
    opted_out_before_sending: Count = Field(description="opted out between the plan and the send")
    pending: Count = Field(description="not yet handed to the carrier (waiting for a window)")


class OptOuts(BaseModel):
    stop_replies: Count
    stop_links: Count
    total: Count
    window_start: datetime | None
    window_end: datetime | None = Field(description="opt-outs are counted until this instant")


class Cost(BaseModel):
    messages_billed: Count
    segments: Count = Field(description="SMS segments handed to the carrier")
    total_excl_vat_cents: int | None
    vat_cents: int | None
    total_incl_vat_cents: int | None
    currency: str = "EUR"
    note: str


class Deferral(BaseModel):
    calendar: str
    label: str
    requested: datetime
    started: datetime
    reason: str


class Wave(BaseModel):
    calendar: str
    label: str
    time_zone: str
    recipients: Count
    first_submission: datetime | None
    last_submission: datetime | None
    pauses: int = Field(description="times the window closed during the wave and it resumed")


class Timeline(BaseModel):
    requested_send_at: datetime
    dispatch_started_at: datetime | None
    first_submission: datetime | None
    last_submission: datetime | None
    last_receipt: datetime | None
    waves: list[Wave]
    deferrals: list[Deferral]


class Bucket(BaseModel):
    start: datetime
    submitted: Count
    receipts: Count


class Series(BaseModel):
    bucket_minutes: int
    buckets: list[Bucket]


class Controls(BaseModel):
    """The broker's control numbers ride along with every send: their outcome, in words
    (they are not prospects, and not counted with the order)."""

    included: bool
    outcome: str
    first_submission: datetime | None
    last_receipt: datetime | None


class Cell(BaseModel):
    value: str
    label: str
    recipients: Count


class Report(BaseModel):
    order_id: str
    state: str = Field(description="in_progress while receipts may arrive, then final")
    final_at: datetime | None = Field(description="when the report became (or becomes) final")
    generated_at: datetime
    order_status: str
    broker: str
    customer: str
    sender: str
    message: str
    criteria: list[str] = Field(description="the targeting criteria, in words")
    minimum_count: int = Field(description="counts under this are never shown")
    volumes: Volumes
    opt_outs: OptOuts
    cost: Cost
    timeline: Timeline
    series: Series
    controls: Controls
    breakdowns: dict[str, list[Cell]]
    notes: list[str]
    excluded_by_files: Count = Field(
        default=None,
        description="people of the segment the order's exclusion files leave out, counted "
        "when the report is made and shown like any count (weighted, rounded, none under the "
        "minimum); null without files, or when hidden",
    )
