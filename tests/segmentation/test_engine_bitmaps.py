"""Counts answered from the engine's bitsets are the scan's counts: same total, same cells, same
sampled counts, for any criteria and breakdowns the bitsets hold, with exclusions, on leap days,
after opt-outs and reservations change and after the day moves on; and what they do not hold
(postcodes, communes, a radius) is scanned."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets import reference, snapshot
from segmentation.criteria import MAX_AGE, MIN_AGE, Criteria, allowed
from segmentation.engine import DIMENSIONS, CountResult, Engine
from tests.segmentation.paths import (
    assert_same,
    counts_while_flipping,
    scanned,
    with_exclude,
)

TODAY = date(2026, 11, 26)
NONE = np.empty(0, dtype=np.int64)
DEPARTMENTS = reference.departments()["code"].to_list()
REGIONS = sorted(set(reference.departments()["region_code"].to_list()))
BROAD = {"interests": ["travel"], "income": ["C", "D"], "housing": ["owner"]}


@pytest.fixture(scope="module")
def engine(base: snapshot.Snapshot) -> Engine:
    e = Engine(base)
    e.sync_eligibility(TODAY, 3, NONE)
    assert e.wait_for_bitmaps(60)  # made beside the first sync
    return e


def assert_bits_are_scan(
    engine: Engine, criteria: Criteria, today: date, dims: tuple[str, ...] = DIMENSIONS
) -> CountResult:
    """The count on the bitsets (the cube off) equals the scan's, cell by cell."""
    assert engine.wait_for_bitmaps(60)  # a new day's are made in the background
    engine._cube_enabled = False
    try:
        assert engine.path(criteria, today, dims) == "bitmaps"
        got = engine.count(criteria, today, dims)
    finally:
        engine._cube_enabled = True
    want = scanned(engine, criteria, today, dims)
    assert_same(got, want)
    return got


def _some(key: str, max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(sorted(allowed(key))), min_size=1, max_size=max_size)


def bitmap_filters() -> st.SearchStrategy[dict[str, Any]]:
    ages = st.integers(MIN_AGE, MAX_AGE) | st.sampled_from([MIN_AGE, MAX_AGE, 64, 65])
    parts: dict[str, st.SearchStrategy[Any]] = {
        "sex": _some("sex", 2),
        "age": st.tuples(ages, ages).map(lambda t: {"min": min(t), "max": max(t)}),
        "departments": st.lists(st.sampled_from(DEPARTMENTS), min_size=1, max_size=12),
        "regions": st.lists(st.sampled_from(REGIONS), min_size=1, max_size=4),
        "csp": _some("csp", 4),
        "income": _some("income", 3),
        "housing": _some("housing", 2),
        "dwelling": _some("dwelling", 2),
        "children": st.booleans(),
        "interests": _some("interests", 3),
    }
    return st.fixed_dictionaries({}, optional=parts)


def bitmap_criteria() -> st.SearchStrategy[dict[str, Any]]:
    return with_exclude(bitmap_filters())


DIMS = st.lists(st.sampled_from(DIMENSIONS), unique=True, max_size=5).map(tuple)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(criteria=bitmap_criteria(), dims=DIMS)
def test_the_bitsets_count_what_the_scan_counts(
    engine: Engine, criteria: dict[str, Any], dims: tuple[str, ...]
) -> None:
    assert_bits_are_scan(engine, Criteria.model_validate(criteria), TODAY, dims)


def test_broad_and_edge_segments(engine: Engine) -> None:
    nobody = (
        {"children": True, "dwelling": ["house"], "exclude": {"children": True}},
        {"departments": ["75"], "regions": ["93"], "income": ["A"]},  # Paris is not in Provence
    )
    for raw in (
        {},
        BROAD,
        {"departments": ["06", "83"], "csp": ["3", "4"]},
        {"age": {"min": 18, "max": 18}, "interests": ["travel"]},
        {"age": {"min": 105, "max": 105}, "housing": ["tenant"]},
        {"regions": ["11"], "exclude": {"departments": ["75"], "age": {"min": 25, "max": 34}}},
        {"sex": ["F"], "exclude": {"interests": ["travel"], "csp": ["3"]}},
        *nobody,
    ):
        got = assert_bits_are_scan(engine, Criteria.model_validate(raw), TODAY)
        if raw in nobody:
            assert got.total == 0
            assert got.breakdowns["department"] == {}
    broad = assert_bits_are_scan(engine, Criteria.model_validate(BROAD), TODAY)
    assert broad.total > 1000
    assert broad.total_sampled > 0  # the sample's sum is counted, not left out
    c = Criteria.model_validate(BROAD)
    plain = engine.count(c, TODAY, DIMENSIONS, with_sample=False)  # the benchmark's baseline
    assert (plain.total, plain.breakdowns) == (broad.total, broad.breakdowns)
    assert plain.total_sampled == 0


def test_what_the_bitsets_do_not_hold_is_scanned(engine: Engine) -> None:
    for raw in (
        {"postcodes": ["06000"], "csp": ["3"]},
        {"communes": ["06088"]},
        {"radius": {"commune": "06088", "km": 10}, "interests": ["travel"]},
        {"sex": ["F"], "exclude": {"postcodes": ["06000"]}},
    ):
        c = Criteria.model_validate(raw)
        assert engine.path(c, TODAY) == "scan"
        assert engine.count(c, TODAY) == scanned(engine, c, TODAY, ("region", "department"))
    c = Criteria.model_validate(BROAD)
    assert engine.path(c, TODAY) == "bitmaps"
    assert engine.path(c, date(2027, 1, 1)) == "scan"  # not their day
    assert engine.path(Criteria.model_validate({"sex": ["F"]}), TODAY) == "cube"  # cube first


def test_ages_on_leap_days(base: snapshot.Snapshot) -> None:
    """Ages on the days around 29 February (a leap year and a common one) count the prospects
    the scan's birth-date bounds count."""
    e = Engine(base, bitmaps_in_background=False)
    for day in (date(2027, 2, 28), date(2027, 3, 1), date(2028, 2, 28), date(2028, 2, 29)):
        e.sync_eligibility(day, 3, NONE)
        assert_bits_are_scan(e, Criteria.model_validate(BROAD), day)
        for lo, hi in ((18, 18), (25, 45), (64, 65), (90, 105)):
            c = Criteria.model_validate({"age": {"min": lo, "max": hi}, "housing": ["owner"]})
            assert_bits_are_scan(e, c, day, ("age_band", "sex"))
    e.close()


def test_the_bitsets_follow_eligibility_and_the_day(base: snapshot.Snapshot) -> None:
    e = Engine(base)
    e.sync_eligibility(TODAY, 3, NONE)
    e.wait_for_bitmaps()
    c = Criteria.model_validate({"interests": ["travel"], "regions": ["93", "11"]})
    before = assert_bits_are_scan(e, c, TODAY)
    travellers = e.matching_ids(
        Criteria.model_validate({"interests": ["travel"], "departments": ["13"]}), TODAY
    )
    gone = travellers[: len(travellers) // 3]
    e.sync_eligibility(TODAY, 3, gone)  # opt-outs or reservations: a delta
    after = assert_bits_are_scan(e, c, TODAY)
    assert after.total == before.total - len(gone)
    assert after.breakdowns["department"]["13"] == before.breakdowns["department"]["13"] - len(gone)
    e.sync_eligibility(TODAY, 3, gone[: len(gone) // 2])  # half of them back
    assert assert_bits_are_scan(e, c, TODAY).total == before.total - len(gone) // 2
    e.sync_eligibility(TODAY, 3, NONE)
    assert assert_bits_are_scan(e, c, TODAY) == before
    later = date(2027, 11, 26)  # a new day: ages and the inactivity cutoff move
    e.sync_eligibility(later, 3, gone)
    moved = assert_bits_are_scan(e, c, later)
    assert moved.breakdowns["age_band"] != before.breakdowns["age_band"]
    e.sync_eligibility(later, 2, gone)  # a shorter inactivity limit, the same day
    assert assert_bits_are_scan(e, c, later).total < moved.total
    e.sync_eligibility(TODAY, 3, NONE)  # a clock set back: rebuilt
    assert assert_bits_are_scan(e, c, TODAY) == before
    e.close()


def test_counts_scan_until_the_first_bitsets_are_made(base: snapshot.Snapshot) -> None:
    """A process starting answers at once: by the scan while its bitsets are being made in
    the background, then from them, with the same numbers; an engine closed meanwhile stops."""
    e = Engine(base)
    e.sync_eligibility(TODAY, 3, NONE)
    c = Criteria.model_validate(BROAD)
    first = e.count(c, TODAY)  # whichever path it found: the scan's numbers either way
    assert e.wait_for_bitmaps(60)
    assert e.path(c, TODAY) == "bitmaps"
    assert e.count(c, TODAY) == first
    closed = Engine(base)
    closed.sync_eligibility(TODAY, 3, NONE)
    closed.close()  # waits for its thread: nothing left running on a closed connection
    assert closed._bits_thread is not None
    assert not closed._bits_thread.is_alive()


def test_counts_racing_updates_see_one_state(base: snapshot.Snapshot) -> None:
    """Counts from several threads while another flips the excluded set: each count is the
    answer of one of the two states, never bitsets half changed."""
    e = Engine(base, bitmaps_in_background=False)
    e.sync_eligibility(TODAY, 3, NONE)
    c = Criteria.model_validate({"interests": ["travel"], "age": {"min": 30, "max": 60}})
    gone = e.matching_ids(Criteria.model_validate({"regions": ["84"]}), TODAY)[::2]
    states = [NONE, gone]
    answers = []
    for excluded in states:
        e.sync_eligibility(TODAY, 3, excluded)
        answers.append(assert_bits_are_scan(e, c, TODAY))
    assert answers[0] != answers[1]
    seen = counts_while_flipping(e, c, TODAY, DIMENSIONS, states)
    assert seen
    assert all(s in answers for s in seen)
    e.close()


def test_bitsets_read_in_parts_count_as_the_scan(
    base: snapshot.Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows' columns are fetched a part at a time (a process starting keeps answering
    quotes meanwhile): read in many small parts, the bitsets still count exactly as the scan,
    on the first day and on another."""
    from segmentation import engine as engine_module

    monkeypatch.setattr(engine_module, "FETCH_ROWS", 7_919)  # parts not aligned on anything
    e = Engine(base, bitmaps_in_background=False)
    try:
        e.sync_eligibility(TODAY, 3, NONE)
        assert e.wait_for_bitmaps(60)
        c = Criteria.model_validate({**BROAD, "age": {"min": 30, "max": 64}})
        assert_bits_are_scan(e, c, TODAY)
        assert_bits_are_scan(e, Criteria.model_validate({"csp": ["3", "5"]}), TODAY)
        e.sync_eligibility(date(2027, 3, 1), 3, NONE)  # a new day's ages read again, in parts
        assert_bits_are_scan(e, c, date(2027, 3, 1))
    finally:
        e.close()
