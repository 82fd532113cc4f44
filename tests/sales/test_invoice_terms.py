from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from kit.errors import ConfigurationError
from sales.invoices.terms import balance_cents, deposit_cents, ecb_rate_for, late_penalty


def test_deposit_is_thirty_percent_rounded_half_up() -> None:
    assert deposit_cents(100_000) == 30_000
    assert deposit_cents(12_345) == 3_704  # 3,703.5 cents -> 3,704
    assert deposit_cents(1) == 0


def test_balance_or_credit_note() -> None:
    assert balance_cents(90_000, 30_000) == 60_000
    assert balance_cents(20_000, 30_000) == -10_000  # a credit note of 100.00 EUR


def test_ecb_rate_of_the_half_year() -> None:
    assert ecb_rate_for(date(2025, 3, 1)) == Decimal("3.15")  # in force on 1 January 2025
    assert ecb_rate_for(date(2025, 8, 15)) == Decimal("2.15")  # on 1 July 2025
    assert ecb_rate_for(date(2026, 1, 31)) == Decimal("2.15")
    with pytest.raises(ConfigurationError, match="no ECB rate known"):
        ecb_rate_for(date(2020, 5, 1))


def test_penalty_on_known_dates() -> None:
    # 1,000.00 EUR due 31 January 2026, paid 2 March 2026: 30 days at 2.15 + 10 = 12.15 %.
    p = late_penalty(100_000, date(2026, 1, 31), date(2026, 3, 2))
    assert p.days_late == 30
    assert p.annual_rate_percent == Decimal("12.15")
    assert p.interest_cents == 999  # 1000 x 12.15% x 30/365 = 9.986 EUR
    assert p.indemnity_cents == 4_000
    assert p.total_cents == 4_999


def test_no_penalty_when_paid_on_time() -> None:
    assert late_penalty(100_000, date(2026, 1, 31), date(2026, 1, 31)).total_cents == 0
    assert late_penalty(0, date(2026, 1, 31), date(2026, 5, 31)).total_cents == 0
