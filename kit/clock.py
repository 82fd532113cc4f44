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
from zoneinfo import ZoneInfo

from kit.settings import get_settings

PARIS = ZoneInfo("Europe/Paris")

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
    local = at.astimezone(PARIS)
    return local.strftime("%a %d %b %Y at %H:%M") + " (Paris time)"


def reset() -> None:
    """Forget the start instant (tests that change RENTAL_NOW)."""
    global _origin
    _origin = None
