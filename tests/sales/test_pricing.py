from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from kit.errors import ConfigurationError
from sales.pricing.grid import DEFAULT, _load
from sales.pricing.service import price, split_volume


def test_volume_tier_applies_to_the_whole_volume() -> None:
    small, large = price(DEFAULT, 4_999, {"metro": 1}), price(DEFAULT, 5_000, {"metro": 1})
    assert small.rental_per_contact_eur == Decimal("0.090")
    assert large.rental_per_contact_eur == Decimal("0.075")
    assert small.rental_cents == 44_991  # 4,999 x 0.09 EUR
    assert large.rental_cents == 37_500


def test_transport_by_zone_and_vat() -> None:
    p = price(DEFAULT, 1_000, {"metro": 900, "overseas": 100}, segments=2)
    lines = {line.zone: line for line in p.transport}
    assert lines["metro"].messages == 900
    assert lines["overseas"].messages == 100
    assert lines["metro"].amount_cents == 8_100  # 900 x 2 x 0.045
    assert lines["overseas"].amount_cents == 1_800  # 100 x 2 x 0.09
    assert p.total_excl_vat_cents == 9_000 + 9_900
    assert p.vat_cents == 3_780
    assert p.total_incl_vat_cents == 18_900 + 3_780


def test_split_volume_keeps_the_total() -> None:
    assert sum(split_volume(1_001, {"metro": 2, "overseas": 1}).values()) == 1_001
    assert split_volume(10, {}) == {"metro": 10}


def test_grid_file_is_validated(tmp_path: Path) -> None:
    bad = tmp_path / "grid.json"
    bad.write_text(
        json.dumps(
            {
                "rental_tiers": [{"min_volume": 10, "per_contact_eur": "0.1"}],
                "transport_per_segment_eur": {"metro": "0.04"},
                "vat_rate": "0.2",
            }
        )
    )
    with pytest.raises(ConfigurationError, match="first rental tier must start at volume 0"):
        _load(bad)
