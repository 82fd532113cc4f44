"""The one clock of the service.

`RENTAL_NOW` starts it at a chosen instant, from which it runs on in real time: demos and tests on
chosen dates see time pass normally. Everything that needs "now" calls `now()`.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from kit.settings import get_settings

PARIS = ZoneInfo("Europe/Paris")

_origin: tuple[datetime, float] | None = None


def _start() -> tuple[datetime, float]:
    global _origin
    if _origin is None:
        start = get_settings().now
        _origin = (
            (start.astimezone(UTC), time.monotonic())
            if start
            else (datetime.fromtimestamp(0, UTC), -1.0)
        )
    return _origin


def now() -> datetime:
    """Current instant, timezone-aware (UTC)."""
    origin, mono = _start()
    if mono < 0:
        return datetime.now(UTC)
    return origin + timedelta(seconds=time.monotonic() - mono)


def today_paris() -> date:
    return now().astimezone(PARIS).date()


def human(at: datetime) -> str:
    """A time for people, in Paris time, e.g. 'Thu 26 Nov 2026 at 17:22 (Paris time)'. Also
    keeps error messages readable: ISO strings look like long digit runs to the redactor."""
    local = at.astimezone(PARIS)
    return local.strftime("%a %d %b %Y at %H:%M") + " (Paris time)"


def reset() -> None:
    """Forget the start instant (tests that change RENTAL_NOW)."""
    global _origin
    _origin = None
