"""Legal send windows, per recipient: the local time and public holidays of where they live.

A recipient's calendar (time zone and holidays, `datasets.geography.calendar_of`) decides
which days and hours are theirs. The default window is Monday-Saturday 08:00-22:00 local
time outside public holidays (settings). Nothing is ever
sent outside a window: callers ask `is_open` right before submitting, and plan with
`next_opening` and `closing`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from datasets.geography import (
    Calendar,
    calendar_from_key,
    calendar_of,
    departments_of_calendar,
    is_holiday,
)
from kit.settings import get_settings

# The calendars themselves (time zone and holidays per department) are geography's; the
# windows are the legal hours inside them.
__all__ = [
    "Calendar",
    "calendar_from_key",
    "calendar_of",
    "closing",
    "daily_window",
    "departments_of_calendar",
    "is_holiday",
    "is_open",
    "local",
    "next_opening",
    "seconds_left",
]


def _window_of(cal: Calendar, day: date) -> tuple[datetime, datetime] | None:
    """The window of a local day as UTC instants, or None when sending is closed all day."""
    s = get_settings()
    if day.weekday() not in s.dispatch.send_days or is_holiday(cal, day):
        return None
    zone = cal.zone
    start = datetime.combine(day, s.dispatch.send_window_start, tzinfo=zone)
    end = datetime.combine(day, s.dispatch.send_window_end, tzinfo=zone)
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
    return s.dispatch.send_window_start, s.dispatch.send_window_end
