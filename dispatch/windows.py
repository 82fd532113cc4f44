"""Legal send windows, per recipient: the local time and public holidays of where they live.

A recipient's calendar (time zone and holidays, `datasets.geography.calendar_of`) decides
which days and hours are theirs; `SendHours` are the legal hours inside it, built from the
dispatch settings (by default Monday-Saturday 08:00-22:00 local time outside public
holidays). The module's functions use the configured hours. Nothing is ever sent outside a
window: callers ask `is_open` right before submitting, and plan with `next_opening` and
`closing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from datasets.geography import (
    Calendar,
    calendar_from_key,
    calendar_of,
    departments_of_calendar,
    is_holiday,
)
from kit.settings import DispatchSettings, get_settings

# The calendars themselves (time zone and holidays per department) are geography's; the
# windows are the legal hours inside them.
__all__ = [
    "Calendar",
    "SendHours",
    "calendar_from_key",
    "calendar_of",
    "closing",
    "configured",
    "departments_of_calendar",
    "is_holiday",
    "is_open",
    "local",
    "next_opening",
    "seconds_left",
]


@dataclass(frozen=True)
class SendHours:
    """The legal hours inside a calendar: days of the week (0 = Monday) and local hours;
    public holidays are always closed."""

    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def of(cls, settings: DispatchSettings) -> SendHours:
        return cls(
            frozenset(settings.send_days), settings.send_window_start, settings.send_window_end
        )

    def window(self, cal: Calendar, day: date) -> tuple[datetime, datetime] | None:
        """The window of a local day as UTC instants, or None when sending is closed all
        day."""
        if day.weekday() not in self.days or is_holiday(cal, day):
            return None
        start = datetime.combine(day, self.start, tzinfo=cal.zone)
        end = datetime.combine(day, self.end, tzinfo=cal.zone)
        # Local times that do not exist or exist twice (clock changes) are resolved by
        # zoneinfo (fold=0); converting to UTC fixes the instant.
        return start.astimezone(UTC), end.astimezone(UTC)

    def is_open(self, cal: Calendar, at: datetime) -> bool:
        window = self.window(cal, at.astimezone(cal.zone).date())
        return window is not None and window[0] <= at < window[1]

    def next_opening(self, cal: Calendar, at: datetime, horizon_days: int = 30) -> datetime:
        """`at` itself when the window is open then, otherwise the next instant it opens."""
        day = at.astimezone(cal.zone).date()
        for offset in range(horizon_days + 1):
            window = self.window(cal, day + timedelta(days=offset))
            if window is None:
                continue
            start, end = window
            if at < end:
                return max(at, start)
        raise ValueError(f"no send window within {horizon_days} days of {at.isoformat()}")

    def closing(self, cal: Calendar, at: datetime) -> datetime:
        """When the window open at `at` closes (`at` must be inside a window)."""
        window = self.window(cal, at.astimezone(cal.zone).date())
        if window is None or not window[0] <= at < window[1]:
            raise ValueError(f"the window is closed at {at.isoformat()}")
        return window[1]

    def seconds_left(self, cal: Calendar, at: datetime) -> float:
        """Seconds until the window closes; 0 when it is closed."""
        if not self.is_open(cal, at):
            return 0.0
        return (self.closing(cal, at) - at).total_seconds()


def configured() -> SendHours:
    """The send hours of the settings (RENTAL_SEND_DAYS, RENTAL_SEND_WINDOW_START/END)."""
    return SendHours.of(get_settings().dispatch)


def is_open(cal: Calendar, at: datetime) -> bool:
    return configured().is_open(cal, at)


def next_opening(cal: Calendar, at: datetime, horizon_days: int = 30) -> datetime:
    """`at` itself when the window is open then, otherwise the next instant it opens."""
    return configured().next_opening(cal, at, horizon_days)


def closing(cal: Calendar, at: datetime) -> datetime:
    """When the window open at `at` closes (`at` must be inside a window)."""
    return configured().closing(cal, at)


def seconds_left(cal: Calendar, at: datetime) -> float:
    """Seconds until the window closes; 0 when it is closed."""
    return configured().seconds_left(cal, at)


def local(cal: Calendar, at: datetime) -> datetime:
    return at.astimezone(cal.zone)
