"""Money as integer cents; unit prices as Decimal euros, rounded half-up to the cent once."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def to_cents(euros: Decimal) -> int:
    """Round an amount in euros to whole cents, half up (the commercial convention)."""
    return int((euros / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def vat_cents(excl_vat_cents: int, rate: Decimal) -> int:
    return to_cents(Decimal(excl_vat_cents) * CENT * rate)


def format_eur(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{frac:02d} EUR".replace(",", " ")
