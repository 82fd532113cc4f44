"""The process's engine over the CURRENT snapshot, swapped when a refresh changes CURRENT."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy.orm import Session

from datasets import snapshot as snap
from kit.clock import PARIS
from kit.db import unit_of_work
from kit.settings import get_settings
from segmentation.criteria import Criteria
from segmentation.eligibility import Eligibility
from segmentation.engine import DEFAULT_BREAKDOWNS, CountResult, Engine
from segmentation.exceptions import ExclusionFileNotFound, ExclusionFileNotReady
from segmentation.repository import ExclusionReadRepository


@dataclass(frozen=True)
class Segmenter:
    engine: Engine
    eligibility: Eligibility
    # Reading the excluded set, applying it and counting happen as one step: a slower request
    # holding an older view of the stores must not re-enable someone who just opted out, and no
    # count may see a half-applied update.
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    @property
    def version(self) -> str:
        return self.engine.snapshot.version

    def refresh_eligibility(
        self, session: Session, now: datetime, exact: bool = False, leave_out: str | None = None
    ) -> date:
        """Apply the current opt-outs, contact pressure and reservations; returns the day (in
        Paris) against which ages and the inactivity limit are evaluated. `exact`: the whole
        contact history is reread first (draws; quotes read what is new). `leave_out`: an
        order whose own reservations do not count (its draw again)."""
        s = get_settings()
        today = now.astimezone(PARIS).date()
        excluded = self.eligibility.excluded(session, now, s.eligibility, exact, leave_out)
        self.engine.sync_eligibility(today, s.eligibility.inactivity_years, excluded)
        return today

    def count(
        self,
        session: Session,
        criteria: Criteria,
        now: datetime,
        dimensions: tuple[str, ...] = DEFAULT_BREAKDOWNS,
    ) -> CountResult:
        with self.lock:
            today = self.refresh_eligibility(session, now)
            self.load_exclusions(session, criteria)
            return self.engine.count(criteria, today, dimensions)

    def count_fresh(
        self,
        criteria: Criteria,
        now: datetime,
        dimensions: tuple[str, ...] = DEFAULT_BREAKDOWNS,
        check: Callable[[Session], None] | None = None,
    ) -> CountResult:
        """`count` in a transaction of its own, opened once this request's turn has come and
        closed before the engine counts: a request waiting for the engine holds no database
        connection. `check`: the caller's own reads in the same transaction, first (one that
        raises is not counted)."""
        with self.lock:
            with unit_of_work() as session:
                if check is not None:
                    check(session)
                today = self.refresh_eligibility(session, now)
                self.load_exclusions(session, criteria)
            return self.engine.count(criteria, today, dimensions)

    def sample(
        self,
        session: Session,
        criteria: Criteria,
        size: int,
        key: str,
        now: datetime,
        exclude: np.ndarray | None = None,
        leave_out: str | None = None,
    ) -> np.ndarray:
        """`size` eligible prospects of the segment, the same for the same key (an order id):
        what an order reserves at confirmation. `exclude`: ids held by other orders;
        `leave_out`: the order whose own reservations leave no one out (drawing again)."""
        with self.lock:
            today = self.refresh_eligibility(session, now, exact=True, leave_out=leave_out)
            self.load_exclusions(session, criteria)
            return self.engine.sample(criteria, size, key, today, exclude)

    def load_exclusions(self, session: Session, criteria: Criteria) -> None:
        """Bring the engine's members of the criteria's exclusion files up to date (a file
        replaced since is loaded again). A file that no longer exists, or whose hashed members
        are not matched with this snapshot yet, is an error: counting or drawing without it,
        or with a match made on an older snapshot, would reach the very people its owner
        asked us to leave out."""
        if not criteria.exclusion_files:
            return
        repo = ExclusionReadRepository(session)
        found = repo.revisions(criteria.exclusion_files, self.version)
        for file_id in criteria.exclusion_files:
            if file_id not in found:
                raise ExclusionFileNotFound(
                    f"exclusion file {file_id} does not exist: remove it from the criteria "
                    "(GET /v1/exclusion-files lists yours)"
                )
            revision, usable = found[file_id]
            if not usable:
                raise ExclusionFileNotReady(
                    f"exclusion file {file_id} is still being matched with the base "
                    f"({self.version}): try again in a few minutes"
                )
            if self.engine.exclusion_revision(file_id) != revision:
                blob = b"".join(repo.keys(file_id, "hmac"))
                n = len(blob) // 32
                hmacs = pa.Array.from_buffers(pa.binary(32), n, [None, pa.py_buffer(blob)])
                self.engine.load_exclusion(file_id, revision, hmacs)


_lock = threading.Lock()
_state: dict[Path, tuple[str, Segmenter]] = {}


def current() -> Segmenter:
    """The segmenter of the current snapshot; the first call loads it (seconds for 10M rows the
    first time a home opens a snapshot, about a second from its prepared base after)."""
    s = get_settings()
    root = s.base_dir.resolve()
    pointer = root / "CURRENT"
    version = pointer.read_text().strip() if pointer.exists() else ""
    cached = _state.get(root)
    if cached and cached[0] == version:
        return cached[1]
    with _lock:
        cached = _state.get(root)
        if cached and cached[0] == version:
            return cached[1]
        snapshot = snap.current(root)
        # The engine reads the snapshot through its prepared base (segmentation/cache.py), made
        # of verified files only and used while they keep their size and time: no 1 GB of
        # checksums at every start.
        engine = Engine(snapshot, threads=s.duckdb.threads, memory_limit=s.duckdb.memory_limit)
        seg = Segmenter(engine, Eligibility(engine))
        # The previous engine is left to the garbage collector: a quote may still be using it.
        _state[root] = (snapshot.version, seg)
        return seg


def forget_eligibility() -> None:
    """Keep the loaded bases (read-only) but forget what each segmenter knew of the database:
    opt-outs, contact pressure and reservations are read again from the one now configured."""
    with _lock:
        for root, (version, seg) in list(_state.items()):
            _state[root] = (version, Segmenter(seg.engine, Eligibility(seg.engine)))


def warm_up() -> Segmenter:
    """Load the current snapshot and apply eligibility once, so the first quote is not slow."""
    from kit import clock

    seg = current()
    with unit_of_work() as session:
        seg.refresh_eligibility(session, clock.now())
    return seg
