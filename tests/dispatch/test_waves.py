"""The waves a customer sees: nothing under the minimum, nor derivable from the total, and a
list whose shape tells nothing of who is in it."""

from __future__ import annotations

from typing import Any

from dispatch.waves import _suppress, reachable
from segmentation.criteria import Criteria
from tests.conftest import ScanningClient, auth
from tests.factories import scheduled_order

ALL_CALENDARS = {
    "metro", "alsace-moselle-57", "alsace-moselle-6AE", "971", "972", "973", "974", "976",
}  # fmt: skip


def test_a_small_wave_is_hidden_with_another() -> None:
    shown = _suppress({"metro": 5_000, "971": 300, "974": 30}, 100)
    assert shown["974"] is None  # under the minimum
    assert shown["971"] is None  # else 5,330 - 5,000 - 300 would tell the 30
    assert shown["metro"] == 5_000


def test_waves_all_above_the_minimum_are_shown() -> None:
    assert _suppress({"metro": 900, "974": 120}, 100) == {"metro": 900, "974": 120}
    assert _suppress({"974": 40, "971": 50}, 100) == {"974": None, "971": None}


def test_an_empty_wave_is_hidden_as_a_small_one_would_be() -> None:
    """Shown in full beside an empty wave, the others would tell it from a small one."""
    for small in (0, 30):
        assert _suppress({"metro": 5_000, "971": 300, "974": small}, 100) == {
            "metro": 5_000,
            "971": None,
            "974": None,
        }
        assert _suppress({"metro": 300 - small, "976": small}, 100) == {
            "metro": None,
            "976": None,
        }
    assert _suppress({"metro": 900}, 100) == {"metro": 900}  # nothing to protect


def test_the_calendars_an_order_lists_come_from_its_criteria_alone() -> None:
    assert reachable(Criteria()) == ALL_CALENDARS
    assert reachable(Criteria(sex=["F"], departments=["76", "976"])) == {"metro", "976"}
    assert reachable(Criteria(regions=["44"])) == {  # Grand Est
        "metro",
        "alsace-moselle-57",
        "alsace-moselle-6AE",
    }
    assert reachable(Criteria(regions=["44"], departments=["57", "06"])) == {"alsace-moselle-57"}
    assert reachable(Criteria(postcodes=["97400"])) == {"974"}
    assert reachable(Criteria(communes=["67482"])) == {"alsace-moselle-6AE"}
    strasbourg = Criteria.model_validate({"radius": {"commune": "67482", "km": 60.0}})
    assert "alsace-moselle-6AE" in reachable(strasbourg)
    assert "974" not in reachable(strasbourg)
    # `exclude` only removes people: Mayotte stays listed.
    assert reachable(
        Criteria.model_validate({"departments": ["76", "976"], "exclude": {"departments": ["976"]}})
    ) == {"metro", "976"}


def _shape(order: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What the send plan tells apart from the big wave's own count."""
    return [
        (w["calendar"], w["recipients"] is None, w["status"], w["starts_at"], w["ends_at"])
        for w in order["waves"]
    ]


def test_a_wave_is_listed_whether_or_not_anyone_is_in_it(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """The attack: a Mayotte wave listed (even hidden) would say that someone of the order
    lives in Mayotte. Two orders, one with a few people in Mayotte, the other with none,
    show the same plan."""
    some = scheduled_order(app_client, org_keys, {"departments": ["76", "976"]}, 300)
    none = scheduled_order(
        app_client,
        org_keys,
        {"departments": ["76", "976"], "exclude": {"departments": ["976"]}},
        300,
    )
    key = auth(org_keys["acme"])
    seen = [app_client.get(f"/v1/orders/{o['id']}", headers=key).json() for o in (some, none)]
    assert all(o["status"] == "scheduled" for o in seen)
    assert [w["calendar"] for w in seen[0]["waves"]] == ["976", "metro"]
    assert _shape(seen[0]) == _shape(seen[1])
    assert all(w["recipients"] is None for o in seen for w in o["waves"])
    # A broad order lists every calendar, its recipients in them or not.
    broad = scheduled_order(app_client, org_keys, {"sex": ["F"], "age": {"min": 80}}, 150)
    waves = app_client.get(f"/v1/orders/{broad['id']}", headers=key).json()["waves"]
    assert {w["calendar"] for w in waves} == ALL_CALENDARS
