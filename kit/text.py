"""Text that may be stored and sent: valid Unicode, no NUL and no control characters but line
breaks. Every free-text field of every request (body, query, header) is `SafeText`."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Lone UTF-16 surrogates (JSON lets "\ud800" through; they cannot be encoded, stored or sent)
# and Unicode non-characters (U+FDD0..U+FDEF and the last two code points of every plane).
INVALID = re.compile(
    "[\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(17))
    + "]"
)
UUID = r"^[0-9a-fA-F-]{1,36}$"
_UUID = re.compile(UUID)


def is_id(value: str) -> bool:
    """Could `value` be one of our ids? Anything else cannot name a row (404, not 500)."""
    return bool(_UUID.match(value))


def is_valid_text(value: str) -> bool:
    """No lone surrogate and no non-character: the text can be encoded as UTF-8."""
    return not INVALID.search(value)


def no_control_characters(value: str) -> str:
    if not is_valid_text(value):
        raise ValueError(
            "contains an invalid character (a lone UTF-16 surrogate or a Unicode "
            "non-character): send valid UTF-8 text"
        )
    if CONTROL.search(value):
        raise ValueError("contains a control character (only line breaks are allowed): remove it")
    return value


SafeText = Annotated[str, AfterValidator(no_control_characters)]
