"""The set of prospects no quote may count: opted out, over the contact-pressure cap, reserved.

Opt-outs and contact history are stored by number HMAC; they are resolved to the snapshot's
prospect ids through the contacts file. Resolutions are cached per snapshot and extended
incrementally (the suppression list only grows), so a quote pays for new opt-outs only.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from kit.settings import Settings
from segmentation.engine import Engine
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
# Answers of `reserved_for` kept per reservation stamp: the quotes' one (it moves only when a
# send time comes due or enters the window) and a few draws'.
ANSWERS = 8


class Eligibility:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._seen: set[int] = set()  # suppression row ids already applied
        self._upto = 0
        self._reconciled = 0.0
        self._suppressed_ids = np.empty(0, dtype=np.int64)
        self._resolved: dict[bytes, np.ndarray] = {}
        # Reservations still held (stamp, send times sorted, prospect ids in the same order),
        # cached until their stamp changes, and the last few answers of `reserved_for`: a quote
        # then costs two binary searches instead of reading and sorting reserved rows again.
        self._held: tuple[int, np.ndarray, np.ndarray] | None = None
        self._answers: dict[tuple[int, int, int], np.ndarray] = {}

    def _suppressed(self, session: Session) -> np.ndarray:
        repo = SuppressionRepository(session)
        with self._lock:
            full = time.monotonic() - self._reconciled > RECONCILE_SECONDS
            # The look-back read also brings anything above the high-water mark: one query.
            since = 0 if full else max(0, self._upto - LOOKBACK)
            fresh = [(i, h) for i, h in repo.hmacs_after(since) if i not in self._seen]
            if fresh:
                ids = self.engine.resolve_hmacs([h for _, h in fresh])
                self._suppressed_ids = np.union1d(self._suppressed_ids, ids)
                self._seen.update(i for i, _ in fresh)
                self._upto = max(self._upto, max(i for i, _ in fresh))
            if full:
                self._reconciled = time.monotonic()
            return self._suppressed_ids

    def _resolve(self, hmacs: list[bytes]) -> np.ndarray:
        with self._lock:
            missing = [h for h in hmacs if h not in self._resolved]
            if missing:
                # One query for all missing numbers; those absent from the snapshot map to nothing.
                found = self.engine.resolve_hmacs_with_keys(missing)
                for h in missing:
                    self._resolved[h] = found.get(h, np.empty(0, dtype=np.int64))
            parts = [self._resolved[h] for h in hmacs]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

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
        self, session: Session, send_at: datetime, now: datetime, settings: Settings
    ) -> np.ndarray:
        """Prospects that reservations leave out of a send at `send_at` (>= `now`): the one
        rule of the quote (send_at = now), the draw at confirmation (the order's send time)
        and the re-validation at send time (now).

        A reservation is held until its order is sent or cancelled. One whose send time has
        come (the order is sending, or waiting for the scheduler, a release or a review) may go
        out at any moment from now on, so it holds its people for every send. Any other holds
        them for a send at T when it sends in [T - min gap, T + pressure window]: a send within
        the window before another order's would count against that order's contact pressure,
        and an earlier send closer than the minimum gap would make ours drop them at send time.
        An earlier send further back is checked against the contact history when ours goes out.
        """
        stamp, times, ids = self._held_rows(session)
        gap = timedelta(days=settings.pressure_min_gap_days)
        window = timedelta(days=settings.pressure_window_days)
        due = int(np.searchsorted(times, now.timestamp(), side="right"))
        lo = max(due, int(np.searchsorted(times, (send_at - gap).timestamp(), side="left")))
        hi = max(lo, int(np.searchsorted(times, (send_at + window).timestamp(), side="right")))
        key = (due, lo, hi)
        with self._lock:
            if self._held is not None and self._held[0] == stamp and key in self._answers:
                return self._answers[key]
        # Rows [0, due) have come due, rows [lo, hi) send around send_at.
        picked = np.unique(ids[:hi] if lo == due else np.concatenate((ids[:due], ids[lo:hi])))
        picked.flags.writeable = False  # shared by the callers that get the same answer
        with self._lock:
            if self._held is not None and self._held[0] == stamp:
                if len(self._answers) >= ANSWERS:
                    self._answers.pop(next(iter(self._answers)))
                self._answers[key] = picked
        return picked

    def excluded(self, session: Session, now: datetime, settings: Settings) -> np.ndarray:
        """Prospect ids to leave out of every count and sample at `now`."""
        pressured = ContactHistoryRepository(session).over_cap(
            now,
            settings.pressure_max_messages,
            settings.pressure_window_days,
            settings.pressure_min_gap_days,
        )
        reserved = self.reserved_for(session, now, now, settings)
        return np.union1d(np.union1d(self._suppressed(session), self._resolve(pressured)), reserved)
