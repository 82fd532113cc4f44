"""Counts on sex, age and places answered from the engine's cube are the scan's counts: same
total, same cells, same sampled counts, for any such criteria and breakdowns, on leap days, after
opt-outs and reservations change and after the day moves on; and a count racing an eligibility
update reads one state or the other, never a cube half made."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets import reference, snapshot
from segmentation.criteria import MAX_AGE, MIN_AGE, Criteria
from segmentation.engine import CountResult, Engine
from tests.segmentation.paths import (
    assert_same,
    counts_while_flipping,
    scanned,
    with_exclude,
)

TODAY = date(2026, 11, 26)
BUILDER = ("region", "department", "age_band", "sex")  # what the segment builder asks
NONE = np.empty(0, dtype=np.int64)
DEPARTMENTS = reference.departments()["code"].to_list()
REGIONS = sorted(set(reference.departments()["region_code"].to_list()))


@pytest.fixture(scope="module")
def engine(base: snapshot.Snapshot) -> Engine:
    e = Engine(base)
    e.sync_eligibility(TODAY, 3, NONE)
    return e


def assert_cube_is_scan(
    engine: Engine, criteria: Criteria, today: date, dims: tuple[str, ...] = BUILDER
) -> CountResult:
    assert engine.answers_from_cube(criteria, today, dims)
    got = engine.count(criteria, today, dims)
    want = scanned(engine, criteria, today, dims)
    assert_same(got, want)
    return got


def _some(values: list[str], max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=max_size)


def cube_filters() -> st.SearchStrategy[dict[str, Any]]:
    ages = st.integers(MIN_AGE, MAX_AGE) | st.sampled_from([MIN_AGE, MAX_AGE, 64, 65])
    parts: dict[str, st.SearchStrategy[Any]] = {
        "sex": _some(["F", "M"], 2),
        "age": st.tuples(ages, ages).map(lambda t: {"min": min(t), "max": max(t)}),
        "departments": _some(DEPARTMENTS, 12),
        "regions": _some(REGIONS, 4),
    }
    return st.fixed_dictionaries({}, optional=parts)


def cube_criteria() -> st.SearchStrategy[dict[str, Any]]:
    return with_exclude(cube_filters())


DIMS = st.lists(st.sampled_from(BUILDER), unique=True, max_size=4).map(tuple)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(criteria=cube_criteria(), dims=DIMS)
def test_the_cube_counts_what_the_scan_counts(
    engine: Engine, criteria: dict[str, Any], dims: tuple[str, ...]
) -> None:
    assert_cube_is_scan(engine, Criteria.model_validate(criteria), TODAY, dims)


def test_edges_and_empty_segments(engine: Engine) -> None:
    for raw in (
        {},
        {"age": {"min": 18, "max": 18}},
        {"age": {"min": 105, "max": 105}},
        {"age": {"min": 18, "max": 105}, "sex": ["F", "M"]},
        {"departments": ["75"], "regions": ["93"]},  # Paris is not in Provence: nobody
        {"sex": ["M"], "exclude": {"sex": ["M"]}},  # nobody
        {"departments": ["2A"], "age": {"min": 100, "max": 105}, "sex": ["M"]},
        {"regions": ["11"], "exclude": {"departments": ["75"], "age": {"min": 25, "max": 34}}},
    ):
        got = assert_cube_is_scan(engine, Criteria.model_validate(raw), TODAY)
        if raw.get("regions") == ["93"] or raw.get("exclude") == {"sex": ["M"]}:
            assert got.total == 0
            assert got.breakdowns["department"] == {}


def test_other_criteria_are_scanned(engine: Engine) -> None:
    """Criteria or breakdowns the cube does not hold fall back to the scan."""
    for raw, dims in (
        ({"csp": ["3"]}, BUILDER),
        ({"sex": ["F"], "exclude": {"interests": ["travel"]}}, BUILDER),
        ({"postcodes": ["06000"]}, ("department",)),
        ({"sex": ["F"]}, ("department", "csp")),
    ):
        c = Criteria.model_validate(raw)
        assert not engine.answers_from_cube(c, TODAY, dims)
        assert engine.count(c, TODAY, dims) == scanned(engine, c, TODAY, dims)
    assert not engine.answers_from_cube(Criteria(), date(2027, 1, 1), BUILDER)  # not its day


def test_ages_on_leap_days(base: snapshot.Snapshot, attributes: pl.DataFrame) -> None:
    """Every single year of age, on the days around 29 February (a leap year and a common
    one), counts the prospects the scan's birth-date bounds count."""
    born = attributes["birth_date"]
    assert ((born.dt.month() == 2) & (born.dt.day() == 29)).sum() > 0  # the case is present
    e = Engine(base)
    days = [date(2027, 2, 28), date(2027, 3, 1), date(2028, 2, 28), date(2028, 2, 29)]
    for day in [*days, date(2028, 3, 1)]:
        e.sync_eligibility(day, 3, NONE)
        assert_cube_is_scan(e, Criteria(), day)
        for age in range(MIN_AGE, MAX_AGE + 1):
            c = Criteria.model_validate({"age": {"min": age, "max": age}})
            assert_cube_is_scan(e, c, day, ("sex",))
    e.close()


def test_the_cube_follows_eligibility_and_the_day(base: snapshot.Snapshot) -> None:
    e = Engine(base)
    e.sync_eligibility(TODAY, 3, NONE)
    c = Criteria.model_validate({"sex": ["F"], "regions": ["93", "11"]})
    before = assert_cube_is_scan(e, c, TODAY)
    women = e.matching_ids(Criteria.model_validate({"sex": ["F"], "departments": ["13"]}), TODAY)
    gone = women[: len(women) // 3]
    e.sync_eligibility(TODAY, 3, gone)  # opt-outs or reservations: a delta
    after = assert_cube_is_scan(e, c, TODAY)
    assert after.total == before.total - len(gone)
    assert after.breakdowns["department"]["13"] == before.breakdowns["department"]["13"] - len(gone)
    e.sync_eligibility(TODAY, 3, gone[: len(gone) // 2])  # half of them back
    assert assert_cube_is_scan(e, c, TODAY).total == before.total - (len(gone) - len(gone) // 2)
    e.sync_eligibility(TODAY, 3, NONE)
    assert assert_cube_is_scan(e, c, TODAY) == before
    later = date(2027, 11, 26)  # a new day: ages and the inactivity cutoff move
    e.sync_eligibility(later, 3, gone)
    moved = assert_cube_is_scan(e, c, later)
    assert moved.breakdowns["age_band"] != before.breakdowns["age_band"]
    e.sync_eligibility(later, 2, gone)  # a shorter inactivity limit, the same day
    assert assert_cube_is_scan(e, c, later).total < moved.total
    e.sync_eligibility(TODAY, 3, NONE)  # a clock set back: rebuilt
    assert assert_cube_is_scan(e, c, TODAY) == before
    e.close()


def test_counts_racing_updates_see_one_state(base: snapshot.Snapshot) -> None:
    """Counts from several threads while another flips the excluded set: each count is the
    answer of one of the two states, never a mixture."""
    e = Engine(base)
    e.sync_eligibility(TODAY, 3, NONE)
    c = Criteria.model_validate({"age": {"min": 30, "max": 60}})
    gone = e.matching_ids(Criteria.model_validate({"regions": ["84"]}), TODAY)[::2]
    states = [NONE, gone]
    answers = []
    for excluded in states:
        e.sync_eligibility(TODAY, 3, excluded)
        answers.append(assert_cube_is_scan(e, c, TODAY))
    assert answers[0] != answers[1]
    seen = counts_while_flipping(e, c, TODAY, BUILDER, states)
    assert seen
    assert all(s in answers for s in seen)
    e.close()
