from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from kit import money, redact


@pytest.mark.parametrize(
    "text",
    ["+33612345678", "06 12 34 56 78", "06.12.34.56.78", "0612345678", "+262 692 12 34 56"],
)
def test_phone_like_text_is_masked(text: str) -> None:
    assert redact.redact(f"unknown value {text!r}") == "unknown value '<redacted>'"


def test_ordinary_numbers_survive() -> None:
    assert redact.redact("age 25 to 45, 1234 rows, department 974") == (
        "age 25 to 45, 1234 rows, department 974"
    )


def test_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("rental.test")
    caplog.handler.addFilter(redact.RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("opt-out from %s", "+33612345678")
    assert "+33612345678" not in caplog.text
    assert "<redacted>" in caplog.text


def test_money_rounds_half_up_once() -> None:
    assert money.to_cents(Decimal("0.005")) == 1
    assert money.to_cents(Decimal("0.0049")) == 0
    assert money.vat_cents(12345, Decimal("0.20")) == 2469
    assert money.format_eur(123456) == "1 234.56 EUR"
