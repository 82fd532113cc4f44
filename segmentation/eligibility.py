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


class Eligibility:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._seen: set[int] = set()  # suppression row ids already applied
        self._upto = 0
        self._reconciled = 0.0
        self._suppressed_ids = np.empty(0, dtype=np.int64)
        self._resolved: dict[bytes, np.ndarray] = {}
        # Reservations still held, cached until their stamp changes: a quote then filters them
        # by send time in memory instead of reading every reserved row again.
        self._reservations: tuple[int, datetime, np.ndarray, np.ndarray] | None = None

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

    def _reserved(self, session: Session, start: datetime, end: datetime) -> np.ndarray:
        """Prospects held by orders sending in [start, end]."""
        repo = ReservationRepository(session)
        stamp = repo.stamp()  # read before the rows: a change in between only forces a reread
        with self._lock:
            cached = self._reservations
            if cached is None or cached[0] != stamp or cached[1] > start:
                since = start - timedelta(days=1)
                ids, times = repo.active_since(since)
                cached = self._reservations = (stamp, since, ids, times)
            _, _, ids, times = cached
        inside = (times >= start.timestamp()) & (times <= end.timestamp())
        return np.unique(ids[inside])

    def excluded(self, session: Session, now: datetime, settings: Settings) -> np.ndarray:
        """Prospect ids to leave out of every count and sample at `now`."""
        pressured = ContactHistoryRepository(session).over_cap(
            now,
            settings.pressure_max_messages,
            settings.pressure_window_days,
            settings.pressure_min_gap_days,
        )
        window = timedelta(days=settings.pressure_min_gap_days)
        reserved = self._reserved(
            session, now - window, now + timedelta(days=settings.pressure_window_days)
        )
        return np.union1d(np.union1d(self._suppressed(session), self._resolve(pressured)), reserved)
