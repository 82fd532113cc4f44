"""Prices in integer cents from a grid; rounding happens once per line, half up."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy.orm import Session

from kit import clock, locks
from kit.money import to_cents, vat_cents
from sales.accounts.schemas import Principal
from sales.pricing.grid import default_grid
from sales.pricing.models import ContractGrid
from sales.pricing.repository import ContractGridRepository
from sales.pricing.schemas import Price, PriceGrid, ZoneLine


def split_volume(quantity: int, mix: dict[str, int]) -> dict[str, int]:
    """Share `quantity` between zones in proportion to `mix` (largest remainder method)."""
    total = sum(mix.values())
    if total == 0:
        return {"metro": quantity}
    raw = {z: Decimal(quantity) * n / total for z, n in mix.items()}
    out = {z: int(v) for z, v in raw.items()}
    left = quantity - sum(out.values())
    for z in sorted(raw, key=lambda z: (raw[z] - out[z], z), reverse=True)[:left]:
        out[z] += 1
    return out


def price(
    grid: PriceGrid,
    quantity: int,
    zone_mix: dict[str, int],
    segments: int | Mapping[str, int] = 1,
) -> Price:
    """The price of `quantity` messages split over zones like `zone_mix`; `segments` per
    message, the same everywhere or per zone (the STOP mention differs overseas)."""
    tier = [t for t in grid.rental_tiers if t.min_volume <= quantity][-1]
    rental = to_cents(tier.per_contact_eur * quantity)
    lines = []
    for zone, messages in sorted(split_volume(quantity, zone_mix).items()):
        unit = grid.transport_eur(zone)
        n = segments if isinstance(segments, int) else segments.get(zone, 1)
        lines.append(
            ZoneLine(
                zone=zone,
                messages=messages,
                segments_per_message=n,
                unit_eur=unit,
                amount_cents=to_cents(unit * messages * n),
            )
        )
    transport = sum(line.amount_cents for line in lines)
    excl = rental + transport
    vat = vat_cents(excl, grid.vat_rate)
    return Price(
        grid=grid.name,
        quantity=quantity,
        rental_per_contact_eur=tier.per_contact_eur,
        rental_cents=rental,
        transport=lines,
        transport_cents=transport,
        total_excl_vat_cents=excl,
        vat_rate=grid.vat_rate,
        vat_cents=vat,
        total_incl_vat_cents=excl + vat,
    )


def grid_for(session: Session, organisation_id: int) -> PriceGrid:
    """The organisation's contract grid, or the default grid."""
    row = ContractGridRepository(session).get(organisation_id)
    if row is None:
        return default_grid()
    return row.grid


def set_contract_grid(
    session: Session, who: Principal, organisation_id: int, grid: PriceGrid
) -> ContractGrid:
    locks.acquire(session, f"price-grid:{organisation_id}")  # two first PUTs: one insert
    repo = ContractGridRepository(session)
    current = repo.get(organisation_id)
    row = ContractGrid(
        organisation_id=organisation_id,
        grid=grid,
        set_by=who.user_id,
        set_at=clock.now(),
        version=(current.version + 1) if current else 1,
    )
    if current is not None:
        session.expunge(current)
    return repo.put(row)


def clear_contract_grid(session: Session, organisation_id: int) -> bool:
    return ContractGridRepository(session).delete(organisation_id)
