"""Where a department is, the one home of these rules: metropolitan France or overseas (from the
reference table's territory, never from a code prefix); the department whose calendar and time
zone stand for metropolitan France; and the calendar of each department.

A calendar is a time zone and a holiday calendar. Metropolitan France is Europe/Paris with the
national holidays; Moselle (57) and Alsace (67, 68) add Good Friday and 26 December; each
overseas department has its own time zone and holidays (Reunion: UTC+4 and 20 December, the
abolition of slavery). The send windows inside them are dispatch's (`dispatch/windows.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from datasets import reference

METRO = "metro"
OVERSEAS = "overseas"
PARIS = "75"  # its calendar and time zone stand for metropolitan France (control numbers, demo)


@cache
def zone_of_department() -> dict[str, str]:
    """Department code -> "metro" or "overseas" (the zones of prices, mentions and waves)."""
    deps = reference.departments()
    return {
        code: METRO if territory == "metro" else OVERSEAS
        for code, territory in zip(deps["code"], deps["territory"], strict=True)
    }


def is_overseas(department: str) -> bool:
    """An overseas department (971-976): its own time zone and holidays, and a STOP link
    instead of a STOP reply, since its operators may not carry replies."""
    return zone_of_department().get(department) == OVERSEAS


# holidays' subdivisions of France for the departments whose calendar differs from the
# national one.
_SUBDIVISION = {
    "57": "57",
    "67": "6AE",
    "68": "6AE",
    "971": "971",
    "972": "972",
    "973": "973",
    "974": "974",
    "976": "976",
}


@dataclass(frozen=True)
class Calendar:
    """Where a recipient's window is decided: a time zone and a holiday calendar."""

    key: str  # "metro", "alsace-moselle-57", "974"...
    time_zone: str
    subdivision: str | None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@lru_cache(maxsize=1)
def _time_zones() -> dict[str, str]:
    deps = reference.departments()
    return dict(zip(deps["code"], deps["time_zone"], strict=True))


@lru_cache(maxsize=256)
def calendar_of(department: str) -> Calendar:
    """The calendar of a recipient living in `department` (INSEE code: '06', '2A', '974')."""
    subdivision = _SUBDIVISION.get(department)
    tz = _time_zones().get(department, "Europe/Paris")
    if subdivision is None:
        return Calendar("metro", tz, None)
    key = subdivision if is_overseas(department) else f"alsace-moselle-{subdivision}"
    return Calendar(key, tz, subdivision)


@lru_cache(maxsize=128)
def _holidays(subdivision: str | None, year: int) -> frozenset[date]:
    # Imported on first use: the package (with dateutil's parser) takes a tenth of a second
    # to import, which an API process starting need not pay before its first order.
    import holidays

    days = holidays.country_holidays("FR", subdiv=subdivision, years=year)
    return frozenset(days.keys())


def is_holiday(cal: Calendar, day: date) -> bool:
    return day in _holidays(cal.subdivision, day.year)


def departments_of_calendar(key: str) -> list[str]:
    """The departments whose recipients follow a calendar other than the metropolitan one
    (an overseas department's own, or one of Alsace-Moselle's two)."""
    subdivision = key.removeprefix("alsace-moselle-")
    return sorted(d for d, s in _SUBDIVISION.items() if s == subdivision)


def calendar_from_key(key: str) -> Calendar:
    """The calendar a ledger row names (see Calendar.key)."""
    if key == "metro":
        return Calendar("metro", "Europe/Paris", None)
    if key.startswith("alsace-moselle-"):
        return Calendar(key, "Europe/Paris", key.removeprefix("alsace-moselle-"))
    return calendar_of(key)
