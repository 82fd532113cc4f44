from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from kit import money, redact


def _forms(e164: str) -> list[str]:
    """A number of the base as people write it: E.164, national, spaced, dotted."""
    national = "0" + e164[3:] if e164.startswith("+33") else "0" + e164[4:]
    pairs = [national[i : i + 2] for i in range(0, 10, 2)]
    return [e164, national, " ".join(pairs), ".".join(pairs), f"{e164[:4]} {e164[4:]}"]


def test_phone_like_text_is_masked(secrets_of_base: dict[str, set[str]]) -> None:
    metro = next(n for n in sorted(secrets_of_base["numbers"]) if n.startswith("+33"))
    overseas = next(n for n in sorted(secrets_of_base["numbers"]) if n.startswith("+262"))
    for text in _forms(metro) + _forms(overseas):
        assert redact.redact(f"unknown value {text!r}") == "unknown value '<redacted>'", text


def test_ordinary_numbers_survive() -> None:
    assert redact.redact("age 25 to 45, 1234 rows, department 974") == (
        "age 25 to 45, 1234 rows, department 974"
    )


def test_log_records_are_masked(
    caplog: pytest.LogCaptureFixture, secrets_of_base: dict[str, set[str]]
) -> None:
    number = next(n for n in sorted(secrets_of_base["numbers"]) if n.startswith("+33"))
    logger = logging.getLogger("rental.test")
    caplog.handler.addFilter(redact.RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("opt-out from %s", number)
    assert number not in caplog.text
    assert "<redacted>" in caplog.text


def test_money_rounds_half_up_once() -> None:
    assert money.to_cents(Decimal("0.005")) == 1
    assert money.to_cents(Decimal("0.0049")) == 0
    assert money.vat_cents(12345, Decimal("0.20")) == 2469
    assert money.format_eur(123456) == "1 234.56 EUR"
