"""The price grid (configuration owned by account managers) and a computed price."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kit.fields import WholeNumber

Zone = Literal["metro", "overseas"]
ZONES: tuple[Zone, ...] = get_args(Zone)
# A unit price in euros: never negative, and far above any real price (amounts stay in range).
UnitPrice = Annotated[Decimal, Field(ge=0, le=100, max_digits=9, decimal_places=5)]


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_volume: WholeNumber = Field(ge=0, le=10**9)
    per_contact_eur: UnitPrice


class PriceGrid(BaseModel):
    """Rental fee per contact by volume tier (the tier of the whole volume applies), plus SMS
    transport per segment by destination zone, plus VAT."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "contract 2027",
                    "rental_tiers": [
                        {"min_volume": 0, "per_contact_eur": "0.12"},
                        {"min_volume": 10000, "per_contact_eur": "0.09"},
                    ],
                    "transport_per_segment_eur": {"metro": "0.045", "overseas": "0.09"},
                    "vat_rate": "0.20",
                }
            ]
        },
    )
    name: str = Field(default="standard", min_length=1, max_length=60, pattern=r"^[\w .-]+$")
    rental_tiers: list[Tier] = Field(min_length=1, max_length=20)
    transport_per_segment_eur: dict[Zone, UnitPrice]
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

    def transport_eur(self, zone: str) -> Decimal:
        """The transport price per SMS segment to `zone`."""
        return self.transport_per_segment_eur[cast(Zone, zone)]


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
