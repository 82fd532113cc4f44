"""One home for where a department is: the reference table's territory decides, not a prefix."""

from __future__ import annotations

from datasets import reference
from datasets.geography import PARIS, is_overseas, zone_of_department
from dispatch import windows


def test_overseas_departments_are_the_five_drom_and_nothing_else() -> None:
    overseas = sorted(code for code, zone in zone_of_department().items() if zone == "overseas")
    assert overseas == ["971", "972", "973", "974", "976"]
    assert not any(is_overseas(code) for code in ("2A", "2B", "59"))
    assert len(zone_of_department()) == reference.departments().height


def test_paris_stands_for_metropolitan_france() -> None:
    assert not is_overseas(PARIS)
    assert windows.calendar_of(PARIS).key == "metro"
    assert windows.calendar_of(PARIS).time_zone == "Europe/Paris"
    assert windows.calendar_of("974").key != "metro"  # Reunion: its own zone and holidays
