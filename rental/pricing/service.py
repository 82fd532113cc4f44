"""Prices in integer cents from a grid; rounding happens once per line, half up."""

from __future__ import annotations

from decimal import Decimal

from kit.money import to_cents, vat_cents
from rental.pricing.schemas import Price, PriceGrid, ZoneLine


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


def price(grid: PriceGrid, quantity: int, zone_mix: dict[str, int], segments: int = 1) -> Price:
    tier = [t for t in grid.rental_tiers if t.min_volume <= quantity][-1]
    rental = to_cents(tier.per_contact_eur * quantity)
    lines = []
    for zone, messages in sorted(split_volume(quantity, zone_mix).items()):
        unit = grid.transport_per_segment_eur[zone]
        lines.append(
            ZoneLine(
                zone=zone,
                messages=messages,
                segments_per_message=segments,
                unit_eur=unit,
                amount_cents=to_cents(unit * messages * segments),
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
