"""Legal send windows, per recipient: the local time and public holidays of where they live.

A "calendar" is what decides a recipient's window: a time zone and a holiday calendar.
Metropolitan France is Europe/Paris with the national holidays; Moselle (57) and Alsace (67,
68) add Good Friday and 26 December; each overseas department has its own time zone and
holidays (Reunion: UTC+4 and 20 December, the abolition of slavery). The default window is
Monday-Saturday 08:00-22:00 local time outside public holidays (settings). Nothing is ever
sent outside a window: callers ask `is_open` right before submitting, and plan with
`next_opening` and `closing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from datasets import reference
from datasets.geography import is_overseas
from kit.settings import get_settings

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
    days = holidays.country_holidays("FR", subdiv=subdivision, years=year)
    return frozenset(days.keys())


def is_holiday(cal: Calendar, day: date) -> bool:
    return day in _holidays(cal.subdivision, day.year)


def _window_of(cal: Calendar, day: date) -> tuple[datetime, datetime] | None:
    """The window of a local day as UTC instants, or None when sending is closed all day."""
    s = get_settings()
    if day.weekday() not in s.send_days or is_holiday(cal, day):
        return None
    zone = cal.zone
    start = datetime.combine(day, s.send_window_start, tzinfo=zone)
    end = datetime.combine(day, s.send_window_end, tzinfo=zone)
    # Local times that do not exist or exist twice (clock changes) are resolved by zoneinfo
    # (fold=0); converting to UTC fixes the instant.
    return start.astimezone(UTC), end.astimezone(UTC)


def is_open(cal: Calendar, at: datetime) -> bool:
    local_day = at.astimezone(cal.zone).date()
    window = _window_of(cal, local_day)
    return window is not None and window[0] <= at < window[1]


def next_opening(cal: Calendar, at: datetime, horizon_days: int = 30) -> datetime:
    """`at` itself when the window is open then, otherwise the next instant it opens."""
    day = at.astimezone(cal.zone).date()
    for offset in range(horizon_days + 1):
        window = _window_of(cal, day + timedelta(days=offset))
        if window is None:
            continue
        start, end = window
        if at < end:
            return max(at, start)
    raise ValueError(f"no send window within {horizon_days} days of {at.isoformat()}")


def closing(cal: Calendar, at: datetime) -> datetime:
    """When the window open at `at` closes (`at` must be inside a window)."""
    window = _window_of(cal, at.astimezone(cal.zone).date())
    if window is None or not window[0] <= at < window[1]:
        raise ValueError(f"the window is closed at {at.isoformat()}")
    return window[1]


def seconds_left(cal: Calendar, at: datetime) -> float:
    """Seconds until the window closes; 0 when it is closed."""
    if not is_open(cal, at):
        return 0.0
    return (closing(cal, at) - at).total_seconds()


def local(cal: Calendar, at: datetime) -> datetime:
    return at.astimezone(cal.zone)


def daily_window() -> tuple[time, time]:
    s = get_settings()
    return s.send_window_start, s.send_window_end


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
