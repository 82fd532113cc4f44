"""Text that may be stored and sent: valid Unicode, no NUL and no control characters but line
breaks. Every free-text field of every request (body, query, header) is `SafeText`."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# What a text may not hold, as a character class: controls but line breaks (\n, \r), lone
# UTF-16 surrogates (JSON lets "\ud800" through; they cannot be encoded, stored or sent) and
# the Unicode non-characters of the basic plane (U+FDD0..U+FDEF, U+FFFE, U+FFFF).
CONTROLS = r"\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f"
NONCHARACTERS = r"\ufdd0-\ufdef\ufffe\uffff"
CONTROL = re.compile(f"[{CONTROLS}]")
INVALID = re.compile(f"[\\ud800-\\udfff{NONCHARACTERS}]")
# The same rule in the OpenAPI document, so that clients and fuzzers know it (the validator
# below enforces it). Lone surrogates cannot be written in a pattern that every regex engine
# reads (Rust's has no surrogates; ECMA-262's would refuse every emoji): no text can hold them.
PATTERN = f"^[^{CONTROLS}{NONCHARACTERS}]*$"
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


class _Documented:
    """Writes the rule into the JSON schema, unless the field has a stricter pattern."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out: dict[str, Any] = handler(schema)
        out.setdefault("pattern", PATTERN)
        return out


SafeText = Annotated[str, AfterValidator(no_control_characters), _Documented]
