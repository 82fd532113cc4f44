"""HTTP: check a message before ordering (encoding, length, segments, mentions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from kit import http_errors as errors
from kit.text import SafeText
from sales.accounts.deps import PrincipalDep
from sales.messages.service import MAX_MESSAGE_LENGTH, check_by_zone, check_sender
from sales.orders.schemas import Sender

router = APIRouter(tags=["messages"])


class MessageDraft(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"message": "{{ civilite }}, -20% avec le code HIVER", "sender": "ACME"}]
        },
    )

    message: SafeText = Field(max_length=MAX_MESSAGE_LENGTH)
    sender: Sender | None = None


@router.post(
    "/messages/check",
    summary="Encoding, characters and segments of a draft message",
    responses=errors.responses(415),
)
def check_message(body: MessageDraft, _: PrincipalDep) -> dict[str, Any]:
    if body.sender is not None:
        check_sender(body.sender)
    return {
        zone: {
            "encoding": c.encoding,
            "characters": c.characters,
            "segments": c.segments,
            "preview": c.full_text,
        }
        for zone, c in check_by_zone(body.message).items()
    }
