"""The one clock of the service.

`RENTAL_NOW` starts it at a chosen instant, from which it runs on in real time: demos and tests on
chosen dates see time pass normally. Every process of one RENTAL_HOME tells the same time (the
start is recorded under RENTAL_HOME). Everything that needs "now" calls `now()`.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator

from kit.settings import get_settings

PARIS = ZoneInfo("Europe/Paris")
# Clocks of clients and servers disagree by this much: "now" from a client may be this old.
SKEW = timedelta(minutes=5)
# Any date the service takes lies in these years: beyond them, arithmetic on it (a time zone,
# a window, a delay) could leave what `datetime` can hold.
FIRST_YEAR, LAST_YEAR = 2000, 2199

_origin: tuple[datetime, float] | None = None


def _shared_start(start: datetime) -> float:
    """The real (epoch) time at which the clock of this home started at `start`: the first
    process of the home records it, the others (API, workers, scheduler, their children) read
    it, so they all tell the same time."""
    home = get_settings().home
    home.mkdir(parents=True, exist_ok=True)
    path = home / "clock.json"
    with open(home / "clock.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            doc = json.loads(path.read_text())
            if doc.get("now") == start.isoformat():
                return float(doc["started"])
        except (OSError, ValueError, KeyError):
            pass
        started = time.time()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"now": start.isoformat(), "started": started}))
        os.replace(tmp, path)
        return started


def _start() -> tuple[datetime, float]:
    global _origin
    if _origin is None:
        start = get_settings().now
        _origin = (
            (start.astimezone(UTC), _shared_start(start.astimezone(UTC)))
            if start
            else (datetime.fromtimestamp(0, UTC), -1.0)
        )
    return _origin


def now() -> datetime:
    """Current instant, timezone-aware (UTC)."""
    origin, started = _start()
    if started < 0:
        return datetime.now(UTC)
    return origin + timedelta(seconds=time.time() - started)


def today_paris() -> date:
    return now().astimezone(PARIS).date()


def human(at: datetime) -> str:
    """A time for people, in Paris time, e.g. 'Thu 26 Nov 2026 at 17:22 (Paris time)'. Also
    keeps error messages readable: ISO strings look like long digit runs to the redactor."""
    try:
        local = at.astimezone(PARIS)
    except (OverflowError, ValueError):  # at the very ends of the calendar: its own offset
        return at.strftime("%a %d %b %Y at %H:%M") + (" UTC" + at.strftime("%z")).rstrip()
    return local.strftime("%a %d %b %Y at %H:%M") + " (Paris time)"


def to_utc(at: datetime) -> datetime | None:
    """`at` in UTC; None when it lies outside what `datetime` holds (year 1 at +14:00)."""
    try:
        return at.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _sane_instant(at: datetime) -> datetime:
    at = at.replace(tzinfo=PARIS) if at.tzinfo is None else at
    instant = to_utc(at)
    if instant is None or not FIRST_YEAR <= instant.year <= LAST_YEAR:
        raise ValueError(f"must lie between the years {FIRST_YEAR} and {LAST_YEAR}")
    return at


def _sane_day(day: date) -> date:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"must lie between the years {FIRST_YEAR} and {LAST_YEAR}")
    return day


def _text(value: object) -> object:
    # JSON has no dates: a date is an ISO 8601 string, never a number (a Unix time, to pydantic).
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 string, e.g. 2027-01-12 or 2027-01-12T10:00+01:00")
    return value


Instant = Annotated[datetime, BeforeValidator(_text), AfterValidator(_sane_instant)]
"""An instant a request gives: ISO 8601, Europe/Paris time when it has no offset, within
FIRST_YEAR..LAST_YEAR (each use bounds it further, e.g. a send time to the horizon)."""
Day = Annotated[date, BeforeValidator(_text), AfterValidator(_sane_day)]
"""A calendar day a request gives, within FIRST_YEAR..LAST_YEAR."""


def reset() -> None:
    """Forget the start instant (tests that change RENTAL_NOW)."""
    global _origin
    _origin = None
