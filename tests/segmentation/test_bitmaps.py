"""The bitsets' own arithmetic on small, hand-made rows: range counts across word edges, age
comparisons at every age, and columns the bitsets must refuse (unknown values, a department
stored in two places), so that such counts go to the scan."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np

from segmentation.bitmaps import Bitmaps, Columns, _range_counts, count, pack, words_for
from segmentation.criteria import Criteria

DAY = date(2026, 11, 26)


def rows(n: int, department: np.ndarray, **masked: Any) -> dict[str, np.ndarray]:
    """A fetch of `n` rows as the engine reads them, every other column plain."""
    found: dict[str, np.ndarray] = {
        "department": department.astype(np.uint16),
        "region": np.zeros(n, dtype=np.uint8),
        "profile": np.arange(n, dtype=np.uint8) % 16,
        "csp": (np.arange(n) % 8).astype(np.uint8),
        "income": (np.arange(n) % 5).astype(np.uint8),
        "interests": (np.arange(n) % 7).astype(np.int16),
        "w": (np.arange(n) % 3 == 0).astype(np.uint8),
        "birth_null": np.zeros(n, dtype=bool),
    }
    return found | masked


def test_range_counts_match_the_rows_across_word_edges() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 63, 64, 65, 200, 1000):
        flags = rng.random(n) < 0.5
        inner = np.arange(1, n)  # range edges inside the rows, some within a word
        edges = np.sort(rng.choice(inner, size=min(5, len(inner)), replace=False))
        starts = np.concatenate([[0], edges]).astype(np.int64)
        ends = np.concatenate([edges, [n]]).astype(np.int64)
        got = _range_counts(pack(flags, words_for(n)), starts, ends)
        want = [int(flags[a:b].sum()) for a, b in zip(starts, ends, strict=True)]
        assert got.tolist() == want


def test_ages_compare_exactly_at_every_age() -> None:
    n = 300
    age = np.arange(n, dtype=np.int16) % 130 - 5  # negative and over 127 too
    columns = Columns.of(rows(n, np.zeros(n)), interests=3, departments=1)
    bits = Bitmaps.of(columns, DAY, age, np.ones(n, dtype=bool), np.empty(0, dtype=np.int64))
    for lo in range(18, 106):
        for hi in (lo, min(lo + 9, 105), 105):
            got = bits._at_least(lo) ^ bits._at_least(hi + 1)
            assert count(got) == int(((age >= lo) & (age <= hi)).sum())


def test_unknown_values_and_split_departments_go_to_the_scan() -> None:
    n = 256
    csp = np.ma.masked_array((np.arange(n) % 8).astype(np.uint8), mask=np.arange(n) == 3)
    columns = Columns.of(rows(n, np.zeros(n), csp=csp), interests=3, departments=2)
    bits = Bitmaps.of(columns, DAY, np.full(n, 40), np.ones(n, dtype=bool), np.empty(0, np.int64))
    assert not bits.answers(Criteria.model_validate({"csp": ["3"]}), ["department"])
    assert not bits.answers(Criteria(), ["csp"])
    assert columns.coded["csp"] == []  # nothing made of what lies under the NULLs
    assert bits.answers(Criteria.model_validate({"income": ["A"]}), ["department"])
    split = np.where(np.arange(n) < 100, 0, 1)
    split[200:] = 0  # department 0 in two places: not a row range
    columns = Columns.of(rows(n, split), interests=3, departments=2)
    bits = Bitmaps.of(columns, DAY, np.full(n, 40), np.ones(n, dtype=bool), np.empty(0, np.int64))
    assert not bits.answers(Criteria(), ["department"])
    assert bits.answers(Criteria(), ["sex"])
