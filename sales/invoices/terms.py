"""Payment terms: the 30% deposit, the balance or credit note, late-payment penalties.

Late payment (French Code de commerce, art. L441-10 and D441-5): interest at the ECB's main
refinancing rate plus 10 points, pro rata temporis, on the amount including VAT, the ECB rate
being the one in force on 1 January or 1 July of the half-year in which payment was due; plus a
fixed recovery indemnity of 40 EUR per invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from kit.errors import ConfigurationError
from kit.money import to_cents
from kit.settings import get_settings

DEPOSIT_SHARE = Decimal("0.30")
PENALTY_POINTS = Decimal("10")
RECOVERY_INDEMNITY_CENTS = 4_000


def deposit_cents(total_excl_vat_cents: int) -> int:
    """30% of the order total excluding VAT, rounded half up to the cent (VAT is then computed
    on it, so that deposit + balance add up exactly to the total, VAT included)."""
    return int((Decimal(total_excl_vat_cents) * DEPOSIT_SHARE).quantize(Decimal(1), ROUND_HALF_UP))


def balance_cents(sent_total_incl_vat_cents: int, deposit_paid_cents: int) -> int:
    """What is left to pay for the volume actually sent; negative: a credit note is due."""
    return sent_total_incl_vat_cents - deposit_paid_cents


def ecb_rate_for(due: date) -> Decimal:
    """The ECB rate (percent) in force on the first day of the half-year of `due`."""
    reference = date(due.year, 1 if due.month <= 6 else 7, 1)
    rates = sorted(get_settings().terms.ecb_rates.items())
    in_force = [rate for since, rate in rates if since <= reference]
    if not in_force:
        raise ConfigurationError(
            f"no ECB rate known on {reference.isoformat()}: add it to RENTAL_ECB_RATES"
        )
    return in_force[-1]


@dataclass(frozen=True)
class Penalty:
    days_late: int
    annual_rate_percent: Decimal
    interest_cents: int
    indemnity_cents: int

    @property
    def total_cents(self) -> int:
        return self.interest_cents + self.indemnity_cents


def late_penalty(amount_incl_vat_cents: int, due: date, paid_or_today: date) -> Penalty:
    """Penalties on an invoice paid (or still unpaid) on `paid_or_today`."""
    return penalty_for(due, [(amount_incl_vat_cents, paid_or_today)])


def penalty_for(due: date, portions: list[tuple[int, date]]) -> Penalty:
    """Penalties on an invoice due on `due` whose amount was settled in `portions`: (amount in
    cents, the day it was paid, or today for what is still unpaid). Interest runs on each
    portion from the due date to its payment; the indemnity is due once per invoice, whatever
    the delay and even for a partial payment."""
    late = [(amount, (until - due).days) for amount, until in portions if amount > 0]
    late = [(amount, days) for amount, days in late if days > 0]
    if not late:
        return Penalty(0, Decimal(0), 0, 0)
    rate = ecb_rate_for(due) + PENALTY_POINTS
    interest = sum(
        (Decimal(amount) / 100 * rate / 100 * days / 365 for amount, days in late), Decimal(0)
    )
    return Penalty(max(d for _, d in late), rate, to_cents(interest), RECOVERY_INDEMNITY_CENTS)
