"""Text that may be stored and sent: no NUL and no control characters but line breaks."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
UUID = r"^[0-9a-fA-F-]{1,36}$"
_UUID = re.compile(UUID)


def is_id(value: str) -> bool:
    """Could `value` be one of our ids? Anything else cannot name a row (404, not 500)."""
    return bool(_UUID.match(value))


def no_control_characters(value: str) -> str:
    if CONTROL.search(value):
        raise ValueError("contains a control character (only line breaks are allowed): remove it")
    return value


SafeText = Annotated[str, AfterValidator(no_control_characters)]
