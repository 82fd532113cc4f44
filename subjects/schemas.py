"""What the rights endpoints take and answer."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kit.clock import Instant
from kit.text import SafeText


class CodeAsk(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"number": "06 XX XX XX XX"}]}
    )
    number: str = Field(min_length=6, max_length=24, description="a mobile number, any format")


class CodeAsked(BaseModel):
    """The same answer whether or not the number is in the base."""

    challenge: str = Field(description="give it back with the code")
    expires_at: datetime
    detail: str


class CodeCheck(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"challenge": "q3Vb0xk2_Yf8mW1nR5tA9cLd4eHs7uJp", "code": "042917"}]
        },
    )
    challenge: str = Field(min_length=20, max_length=64)
    code: str = Field(pattern=r"^\d{6}$")


class Access(BaseModel):
    access: str = Field(description="send it as the X-Rights-Access header")
    expires_at: datetime


class Consent(BaseModel):
    opt_in: bool
    source: str
    date: dt.date
    proof_ref: str
    last_interaction: dt.date


class Campaign(BaseModel):
    sender: str
    sent_at: datetime


class RequestOut(BaseModel):
    id: int
    kind: str
    status: str
    created_at: datetime
    due_at: datetime
    closed_at: datetime | None = None
    answer: str | None = None


class Record(BaseModel):
    """What the broker holds about the verified number."""

    in_base: bool
    attributes: dict[str, str | int | float | bool | list[str] | None] = Field(default_factory=dict)
    consent: Consent | None = None
    campaigns: list[Campaign] = Field(default_factory=list)
    opted_out: bool
    erasure: Literal["none", "pending", "done"]
    requests: list[RequestOut] = Field(default_factory=list)


class HumanRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"kind": "rectification", "message": "Ma catégorie est cadre."}]
        },
    )
    kind: Literal["rectification", "written"]
    message: SafeText = Field(min_length=1, max_length=2000)


class StaffRequest(RequestOut):
    overdue: bool
    days_left: int
    message: str | None = None


class StaffAnswer(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"answer": "Corrigé le 12 mars."}]}
    )
    answer: SafeText = Field(min_length=1, max_length=2000)


class WrittenRequest(BaseModel):
    """A request received by post or e-mail, entered by staff."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"message": "Courrier: demande d'accès reçue."}]},
    )
    message: SafeText = Field(min_length=1, max_length=2000)
    received_at: Instant | None = Field(default=None, description="when it arrived (default now)")
