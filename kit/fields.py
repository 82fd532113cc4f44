"""Request fields that read JSON exactly as the OpenAPI document says: pydantic's lax mode
would take "12" or 12.0 for an integer and 0 for a boolean, which the document forbids (and a
client relying on them would break on any other server of the same document)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field


def _whole(value: Any) -> Any:
    # JSON Schema counts 12.0 as an integer: take it; strict mode refuses strings and booleans.
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[int, BeforeValidator(_whole), Field(strict=True)]
"""An integer: 12 or 12.0, not "12", not true."""
Flag = Annotated[bool, Field(strict=True)]
"""A boolean: true or false, not 0, 1 or "yes"."""


def one_of(values: Iterable[str]) -> str:
    """A regular expression that matches exactly one of `values` (a query parameter bound to
    an enum's values, documented as a pattern)."""
    return "^(" + "|".join(re.escape(v) for v in values) + ")$"
