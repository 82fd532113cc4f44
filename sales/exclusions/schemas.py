from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Form = Literal["numbers", "sha256"]


class ExclusionFileOut(BaseModel):
    """An exclusion file as its owner sees it: counts of its lines, never a line."""

    id: str
    name: str
    form: Form = Field(description="numbers: phone numbers; sha256: hashed by you (salted)")
    lines: int = Field(description="non-empty lines read")
    accepted: int = Field(description="distinct valid numbers (or hashes) kept")
    rejected: int = Field(description="lines that were not a valid number (or hash)")
    ready: bool = Field(
        description="usable in criteria now (a hashed file is matched with each new base first)"
    )
    created_at: datetime
    updated_at: datetime


class ExclusionFileList(BaseModel):
    items: list[ExclusionFileOut]


class ExclusionSalt(BaseModel):
    """What a customer needs to hash its numbers on its own premises."""

    salt: str
    normalisation: str
    hash: str
    example: str
