"""Webhook endpoints and their delivery log as the API shows them (never the secret, but once)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kit.text import SafeText
from webhooks.events import EventType


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[SafeText, Field(min_length=8, max_length=2000)] = Field(
        description="where events are POSTed: https (http only to loopback when the service "
        "is set up for tests or a demo)",
        examples=["https://hooks.example.com/rental"],
    )
    events: list[EventType] = Field(
        min_length=1,
        max_length=len(EventType),
        description="the event types to receive",
        examples=[["order.status_changed", "invoice.issued"]],
    )
    description: Annotated[SafeText, Field(max_length=200)] = ""


class WebhookOut(BaseModel):
    id: str
    url: str
    description: str
    events: list[str]
    status: str = Field(description="active, or disabled after deliveries failed in a row")
    created_at: datetime
    disabled_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="the signing secret (`whsec_` + base64), shown this once: keep it to "
        "verify the `webhook-signature` header"
    )


class WebhookList(BaseModel):
    items: list[WebhookOut]


class AttemptOut(BaseModel):
    number: int
    at: datetime
    status_code: int | None = Field(description="the endpoint's HTTP status; none: no answer")
    duration_ms: int
    error: str | None


class DeliveryOut(BaseModel):
    id: int
    event_id: str = Field(description="sent as `webhook-id`, the same on every attempt")
    event_type: str
    status: str = Field(description="pending, succeeded or failed")
    attempts: list[AttemptOut]
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="pending: when it is tried next")
    finished_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    limit: int
    offset: int
