"""The default price grid, overridable by a JSON file (setting RENTAL_PRICE_GRID_FILE)."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from kit.errors import ConfigurationError
from kit.settings import get_settings
from sales.pricing.schemas import PriceGrid, Tier

# Typical French list-rental prices (per contact, degressive) and SMS transport per segment.
DEFAULT = PriceGrid(
    rental_tiers=[
        Tier(min_volume=0, per_contact_eur=Decimal("0.090")),
        Tier(min_volume=5_000, per_contact_eur=Decimal("0.075")),
        Tier(min_volume=20_000, per_contact_eur=Decimal("0.060")),
        Tier(min_volume=100_000, per_contact_eur=Decimal("0.045")),
    ],
    transport_per_segment_eur={"metro": Decimal("0.045"), "overseas": Decimal("0.090")},
    vat_rate=Decimal("0.20"),
)


@lru_cache(maxsize=4)
def _load(path: Path | None) -> PriceGrid:
    if path is None:
        return DEFAULT
    try:
        return PriceGrid.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as exc:
        raise ConfigurationError(f"price grid file {path} is unusable: {exc}") from exc


def default_grid() -> PriceGrid:
    return _load(get_settings().terms.price_grid_file)
