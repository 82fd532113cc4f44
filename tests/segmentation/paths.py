"""The engine's faster paths (cube, bitsets) against its scan: the scan's own count, the
comparison cell by cell, and counts read while another thread flips the excluded set."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import numpy as np
from hypothesis import strategies as st

from segmentation.criteria import Criteria
from segmentation.engine import CountResult, Engine


def scanned(engine: Engine, criteria: Criteria, today: date, dims: tuple[str, ...]) -> CountResult:
    """The scan's count (the cube and the bitsets off)."""
    engine._cube_enabled = engine._bits_enabled = False
    try:
        return engine.count(criteria, today, dims)
    finally:
        engine._cube_enabled = engine._bits_enabled = True


def assert_same(got: CountResult, want: CountResult) -> None:
    """Same total, cells and sampled counts (each said apart first, for a readable failure)."""
    assert got.total == want.total
    assert got.breakdowns == want.breakdowns
    assert got.total_sampled == want.total_sampled
    assert got.sampled == want.sampled
    assert got == want


def counts_while_flipping(
    e: Engine, c: Criteria, today: date, dims: tuple[str, ...], states: list[np.ndarray]
) -> list[CountResult]:
    """What three reader threads counted while the excluded set went back and forth between
    `states` thirty times."""
    stop = threading.Event()
    seen: list[CountResult] = []

    def count() -> None:
        while not stop.is_set():
            seen.append(e.count(c, today, dims))

    readers = [threading.Thread(target=count) for _ in range(3)]
    for r in readers:
        r.start()
    for i in range(30):
        e.sync_eligibility(today, 3, states[i % 2])
    stop.set()
    for r in readers:
        r.join()
    return seen


def with_exclude(
    filters: st.SearchStrategy[dict[str, Any]],
) -> st.SearchStrategy[dict[str, Any]]:
    """Criteria of `filters`, sometimes with a non-empty `exclude` drawn from the same."""
    exclude = filters.filter(bool)
    return st.tuples(filters, st.none() | exclude).map(
        lambda t: t[0] | ({"exclude": t[1]} if t[1] else {})
    )
