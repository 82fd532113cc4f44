"""The set of prospects no quote may count: opted out, over the contact-pressure cap, reserved.

Opt-outs and contact history are stored by number HMAC; they are resolved to the snapshot's
prospect ids through the contacts file. Resolutions are cached per snapshot and extended
incrementally (the suppression list only grows), so a quote pays for new opt-outs only.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from kit.settings import EligibilitySettings
from segmentation.engine import Engine, unique
from segmentation.repository import (
    ContactHistoryRepository,
    ReservationRepository,
    SuppressionRepository,
)

# Opt-outs are read incrementally by id. Ids are handed out in order but may commit out of
# order (PostgreSQL sequences), so each read looks back over the last LOOKBACK ids for late
# commits, and a full reread every RECONCILE_SECONDS catches anything older: an opt-out is never
# missed for good.
LOOKBACK = 1_000
RECONCILE_SECONDS = 300.0
# The contact history of the window is reread whole less often (it may hold millions of rows);
# draws reread it every time.
CONTACTS_RECONCILE_SECONDS = 900.0
# Answers of `reserved_for` kept per reservation stamp: the quotes' one (it moves only when a
# send time comes due or enters the window) and a few draws'.
ANSWERS = 8


class ContactPressure:
    """Who is over the contact-pressure cap at a given instant: contacted `max_messages` times
    in the rolling window, or once within the minimum gap.

    The contacts of the window are held in memory (id, number key, send time), read
    incrementally by id like the opt-outs, their numbers resolved to prospect ids once each. A
    quote then costs two bincounts over the window's contacts, not a GROUP BY over the contact
    history and a resolution of every number it returns. `refresh(full=True)` rereads the
    window whole: the draw of an order and the re-validation at send time take that exact view,
    so a contact committed late (beyond the look-back) can never make anyone over the cap
    receive a message. Answers are kept for the minute they were asked in: a cached answer
    only ever holds people out a little longer (someone leaving the window), never lets one in
    early, and any new contact drops it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._since = float("inf")  # epoch seconds: contacts sent since then are held
        self._upto = 0  # highest contact id held
        self._recent: set[int] = set()  # held ids above _upto - LOOKBACK (late commits)
        self._keys = np.empty(0, dtype=np.int64)  # per contact: its number's key
        self._times = np.empty(0, dtype=np.float64)  # per contact: sent at (epoch seconds)
        self._key_of: dict[bytes, int] = {}  # number HMAC -> key
        self._first = np.empty(0, dtype=np.int64)  # key -> a prospect id (-1: not in the base)
        self._more: dict[int, np.ndarray] = {}  # key -> the other prospect ids (a shared number)
        self._reconciled = 0.0
        self._answer: tuple[tuple[int, int, int, int, int], np.ndarray] | None = None

    def refresh(self, session: Session, since: datetime, full: bool = False) -> None:
        """Bring the contacts sent since `since` up to date (all of them again when `full`)."""
        start = since.timestamp()
        stale = time.monotonic() - self._reconciled > CONTACTS_RECONCILE_SECONDS
        if full or start < self._since or stale:
            self._reset(start)
        after = max(0, self._upto - LOOKBACK) if self._upto else 0
        repo = ContactHistoryRepository(session)
        window = datetime.fromtimestamp(self._since, UTC)
        if after and repo.tail(after, window) == (len(self._recent), self._upto):
            return  # nothing new above the look-back mark: no row to read
        ids, hmacs, times = repo.events(after, window)
        fresh = np.fromiter(
            (i not in self._recent for i in ids.tolist()), dtype=bool, count=len(ids)
        )
        if not fresh.any():
            return
        ids, times = ids[fresh], times[fresh]
        hmacs = [h for h, f in zip(hmacs, fresh.tolist(), strict=True) if f]
        self._keys = np.concatenate((self._keys, self._keys_for(hmacs)))
        self._times = np.concatenate((self._times, times))
        self._upto = max(self._upto, int(ids.max()))
        self._recent = {i for i in self._recent if i > self._upto - LOOKBACK}
        self._recent.update(int(i) for i in ids if i > self._upto - LOOKBACK)
        self._answer = None

    def _reset(self, since: float) -> None:
        self._since, self._upto, self._recent = since, 0, set()
        self._keys = np.empty(0, dtype=np.int64)
        self._times = np.empty(0, dtype=np.float64)
        self._reconciled = time.monotonic()
        self._answer = None

    def _keys_for(self, hmacs: list[bytes]) -> np.ndarray:
        """The key of each number, new numbers resolved to prospect ids in one engine call."""
        new = list(dict.fromkeys(h for h in hmacs if h not in self._key_of))
        if new:
            found = self.engine.resolve_hmacs_with_keys(new)
            first = np.full(len(new), -1, dtype=np.int64)
            for n, h in enumerate(new):
                key = len(self._key_of)
                self._key_of[h] = key
                pids = found.get(h)
                if pids is not None and len(pids):
                    first[n] = pids[0]
                    if len(pids) > 1:
                        self._more[key] = pids[1:]
            self._first = np.concatenate((self._first, first))
        return np.fromiter((self._key_of[h] for h in hmacs), dtype=np.int64, count=len(hmacs))

    def over_cap(
        self, now: datetime, max_messages: int, window_days: int, min_gap_days: int
    ) -> np.ndarray:
        """Prospect ids over the cap at `now` (sorted, unique; the same array while nothing
        changed within the minute)."""
        asked = (
            int(now.timestamp() // 60),
            len(self._times),
            max_messages,
            window_days,
            min_gap_days,
        )
        if self._answer is not None and self._answer[0] == asked:
            return self._answer[1]
        window_start = (now - timedelta(days=window_days)).timestamp()
        gap_start = (now - timedelta(days=min_gap_days)).timestamp()
        size = len(self._first)
        counts = np.bincount(self._keys[self._times >= window_start], minlength=size)
        recent = np.bincount(self._keys[self._times >= gap_start], minlength=size)
        over = (counts >= max_messages) | (recent > 0)
        ids = self._first[over]
        extra = [more for key, more in self._more.items() if over[key]]
        picked = unique(np.concatenate([ids[ids >= 0], *extra]))
        picked.flags.writeable = False  # shared by every caller that gets the same answer
        self._answer = (asked, picked)
        return picked


class Eligibility:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._seen: set[int] = set()  # suppression row ids already applied
        self._recent: set[int] = set()  # those above _upto - LOOKBACK
        self._upto = 0
        self._reconciled = 0.0
        self._suppressed_ids = np.empty(0, dtype=np.int64)
        # Reservations still held (stamp, send times sorted, prospect ids in the same order),
        # cached until their stamp changes, and the last few answers of `reserved_for`: a quote
        # then costs two binary searches instead of reading and sorting reserved rows again.
        self._held: tuple[int, np.ndarray, np.ndarray] | None = None
        self._answers: dict[tuple[int, int, int], np.ndarray] = {}
        # The same without one order's rows (stamp, order id, times, ids): its draw again.
        self._others: tuple[int, str, np.ndarray, np.ndarray] | None = None
        self._pressure = ContactPressure(engine)
        # The last union of the three parts, kept while each part is the same array.
        self._union: tuple[tuple[np.ndarray, ...], np.ndarray] | None = None

    def _suppressed(self, session: Session) -> np.ndarray:
        repo = SuppressionRepository(session)
        with self._lock:
            full = time.monotonic() - self._reconciled > RECONCILE_SECONDS
            # The look-back read also brings anything above the high-water mark: one query,
            # made only when a count shows something there that is not held yet.
            since = 0 if full else max(0, self._upto - LOOKBACK)
            if not full and repo.tail(since) == (len(self._recent), self._upto):
                return self._suppressed_ids
            fresh = [(i, h) for i, h in repo.hmacs_after(since) if i not in self._seen]
            if fresh:
                ids = self.engine.resolve_hmacs([h for _, h in fresh])
                self._suppressed_ids = unique(np.concatenate((self._suppressed_ids, ids)))
                self._seen.update(i for i, _ in fresh)
                self._upto = max(self._upto, max(i for i, _ in fresh))
            mark = self._upto - LOOKBACK
            self._recent = {i for i in self._recent if i > mark}
            self._recent.update(i for i, _ in fresh if i > mark)
            if full:
                self._reconciled = time.monotonic()
                self._recent = {i for i in self._seen if i > mark}
            return self._suppressed_ids

    def _held_rows(self, session: Session) -> tuple[int, np.ndarray, np.ndarray]:
        repo = ReservationRepository(session)
        stamp = repo.stamp()  # read before the rows: a change in between only forces a reread
        with self._lock:
            if self._held is None or self._held[0] != stamp:
                ids, times = repo.held()
                order = np.argsort(times, kind="stable")
                self._held = (stamp, times[order], ids[order])
                self._answers = {}
            return self._held

    def reserved_for(
        self,
        session: Session,
        send_at: datetime,
        now: datetime,
        settings: EligibilitySettings,
        leave_out: str | None = None,
    ) -> np.ndarray:
        """Prospects that reservations leave out of a send at `send_at` (>= `now`): the one
        rule of the quote (send_at = now), the draw at confirmation (the order's send time)
        and the re-validation at send time (now). `leave_out`: an order whose own reservations
        do not count (its draw again: what it holds is available to it, what others hold not).

        A reservation is held until its order is sent or cancelled. One whose send time has
        come (the order is sending, or waiting for the scheduler, a release or a review) may go
        out at any moment from now on, so it holds its people for every send. Any other holds
        them for a send at T when it sends in [T - min gap, T + pressure window]: a send within
        the window before another order's would count against that order's contact pressure,
        and an earlier send closer than the minimum gap would make ours drop them at send time.
        An earlier send further back is checked against the contact history when ours goes out.
        """
        if leave_out is not None:
            times, ids = self._held_by_others(session, leave_out)
            return _held_at(times, ids, send_at, now, settings)
        stamp, times, ids = self._held_rows(session)
        key = _window(times, send_at, now, settings)
        with self._lock:
            if self._held is not None and self._held[0] == stamp and key in self._answers:
                return self._answers[key]
        picked = _held_at(times, ids, send_at, now, settings)
        with self._lock:
            if self._held is not None and self._held[0] == stamp:
                if len(self._answers) >= ANSWERS:
                    self._answers.pop(next(iter(self._answers)))
                self._answers[key] = picked
        return picked

    def _held_by_others(self, session: Session, order_id: str) -> tuple[np.ndarray, np.ndarray]:
        """`_held_rows` without the rows of `order_id`, kept for one stamp and order (a draw
        asks twice: around its send time, and for a send now)."""
        repo = ReservationRepository(session)
        stamp = repo.stamp()
        with self._lock:
            cached = self._others
            if cached is not None and cached[:2] == (stamp, order_id):
                return cached[2], cached[3]
        ids, times = repo.held(excluding=order_id)
        order = np.argsort(times, kind="stable")
        with self._lock:
            self._others = (stamp, order_id, times[order], ids[order])
        return times[order], ids[order]

    def excluded(
        self,
        session: Session,
        now: datetime,
        settings: EligibilitySettings,
        exact: bool = False,
        leave_out: str | None = None,
    ) -> np.ndarray:
        """Prospect ids to leave out of every count and sample at `now`: the same array as
        last time when nothing changed. `exact`: reread the contact history whole first (the
        draw and the re-validation at send time; quotes read it incrementally). `leave_out`:
        an order whose own reservations leave no one out (its draw again)."""
        window = timedelta(days=settings.pressure_window_days)
        with self._lock:
            self._pressure.refresh(session, now - window, full=exact)
            pressured = self._pressure.over_cap(
                now,
                settings.pressure_max_messages,
                settings.pressure_window_days,
                settings.pressure_min_gap_days,
            )
        reserved = self.reserved_for(session, now, now, settings, leave_out)
        parts = (self._suppressed(session), pressured, reserved)
        with self._lock:
            if self._union is not None and all(
                a is b for a, b in zip(parts, self._union[0], strict=True)
            ):
                return self._union[1]
            union = unique(np.concatenate(parts))
            union.flags.writeable = False
            self._union = (parts, union)
            return union


def _window(
    times: np.ndarray, send_at: datetime, now: datetime, settings: EligibilitySettings
) -> tuple[int, int, int]:
    """(due, lo, hi) in `times` (sorted): rows [0, due) have come due by `now`, rows [lo, hi)
    send around `send_at` (`reserved_for`'s rule)."""
    gap = timedelta(days=settings.pressure_min_gap_days)
    window = timedelta(days=settings.pressure_window_days)
    due = int(np.searchsorted(times, now.timestamp(), side="right"))
    lo = max(due, int(np.searchsorted(times, (send_at - gap).timestamp(), side="left")))
    hi = max(lo, int(np.searchsorted(times, (send_at + window).timestamp(), side="right")))
    return due, lo, hi


def _held_at(
    times: np.ndarray,
    ids: np.ndarray,
    send_at: datetime,
    now: datetime,
    settings: EligibilitySettings,
) -> np.ndarray:
    """The prospects of the rows (`times` sorted, `ids` in the same order) that hold them out
    of a send at `send_at` (sorted, unique, read-only: shared by the callers of an answer)."""
    due, lo, hi = _window(times, send_at, now, settings)
    picked = unique(ids[:hi] if lo == due else np.concatenate((ids[:due], ids[lo:hi])))
    picked.flags.writeable = False
    return picked
