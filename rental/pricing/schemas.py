"""The price grid (configuration owned by account managers) and a computed price."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ZONES = ("metro", "overseas")


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_volume: int = Field(ge=0)
    per_contact_eur: Decimal = Field(ge=0)


class PriceGrid(BaseModel):
    """Rental fee per contact by volume tier (the tier of the whole volume applies), plus SMS
    transport per segment by destination zone, plus VAT."""

    model_config = ConfigDict(extra="forbid")
    name: str = "standard"
    rental_tiers: list[Tier]
    transport_per_segment_eur: dict[str, Decimal]
    vat_rate: Decimal = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _coherent(self) -> PriceGrid:
        if not self.rental_tiers or self.rental_tiers[0].min_volume != 0:
            raise ValueError("the first rental tier must start at volume 0")
        volumes = [t.min_volume for t in self.rental_tiers]
        if volumes != sorted(set(volumes)):
            raise ValueError("rental tiers must have increasing min_volume")
        missing = [z for z in ZONES if z not in self.transport_per_segment_eur]
        if missing:
            raise ValueError(f"transport price missing for zone(s) {', '.join(missing)}")
        return self


class ZoneLine(BaseModel):
    zone: str
    messages: int
    segments_per_message: int
    unit_eur: Decimal
    amount_cents: int


class Price(BaseModel):
    grid: str
    quantity: int
    rental_per_contact_eur: Decimal
    rental_cents: int
    transport: list[ZoneLine]
    transport_cents: int
    total_excl_vat_cents: int
    vat_rate: Decimal
    vat_cents: int
    total_incl_vat_cents: int
    currency: str = "EUR"
