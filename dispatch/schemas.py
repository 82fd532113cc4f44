"""What the API shows of the carriers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CarrierHealth(BaseModel):
    name: str = Field(description="the configured carrier (RENTAL_CARRIER)")
    state: str = Field(
        description="ok; unavailable (messages wait, retried with back-off: account managers "
        "see why in GET /v1/carriers/status); unknown before the first contact"
    )
    since: datetime | None = Field(description="in this state since")


class CarrierStatusOut(CarrierHealth):
    configured: bool = Field(description="the carrier this service sends through now")
    last_error: str | None = Field(description="why the last failed contact failed")
    last_error_at: datetime | None
    last_success_at: datetime | None = Field(
        description="the last contact that worked (refreshed every few seconds at most)"
    )
