"""The builder's breakdowns (department, age band, sex) counted through the engine's `cell`
column are the ones the per-row CASE gives: same cells, same counts, same sampled counts, on
the day the cells were made, after the day moves on, and after a clock set back."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from datasets import snapshot
from segmentation.criteria import Criteria
from segmentation.engine import CountResult, Engine
from tests.segmentation import reference_impl
from tests.segmentation.test_engine import filters

TODAY = date(2026, 11, 26)
BUILDER = ("region", "department", "age_band", "sex")  # what the segment builder asks
NONE = np.empty(0, dtype=np.int64)


@pytest.fixture(scope="module")
def engine(base: snapshot.Snapshot) -> Engine:
    e = Engine(base)
    e.sync_eligibility(TODAY, 3, NONE)
    return e


def one_by_one(engine: Engine, criteria: Criteria, today: date) -> CountResult:
    """Each dimension counted alone: the per-row CASE for age bands, no cell column."""
    parts = {d: engine.count(criteria, today, (d,)) for d in BUILDER}
    return CountResult(
        parts["department"].total,
        {d: r.breakdowns[d] for d, r in parts.items()},
        parts["department"].total_sampled,
        {d: r.sampled[d] for d, r in parts.items()},
        parts["department"].rate,
    )


def assert_same(engine: Engine, criteria: Criteria, today: date) -> CountResult:
    together = engine.count(criteria, today, BUILDER)
    assert together == one_by_one(engine, criteria, today)
    return together


def age_bands(attributes: pl.DataFrame, criteria: dict[str, Any], today: date) -> dict[str, int]:
    """The reference's eligible prospects of `criteria` per age band on `today`."""
    bits: list[str] = []
    m = reference_impl._mask(attributes, criteria, today, bits)
    cutoff = reference_impl._years_before(today, 3)
    m &= attributes["opt_in"] & (attributes["last_interaction"] >= cutoff)
    age = attributes.select(reference_impl._age(attributes, today)).to_series().filter(m)
    bands = {"18-24": (18, 24), "25-34": (25, 34), "35-44": (35, 44), "45-54": (45, 54)}
    bands |= {"55-64": (55, 64), "65+": (65, 500)}
    found = {b: int(((age >= lo) & (age <= hi)).sum()) for b, (lo, hi) in bands.items()}
    return {b: n for b, n in found.items() if n}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(criteria=filters())
def test_cells_give_the_breakdowns_the_case_gives(engine: Engine, criteria: dict[str, Any]) -> None:
    assert_same(engine, Criteria.model_validate(criteria), TODAY)


def test_age_bands_match_the_reference(engine: Engine, attributes: pl.DataFrame) -> None:
    for raw in ({}, {"sex": ["F"], "departments": ["75", "13"]}, {"age": {"min": 30, "max": 60}}):
        got = assert_same(engine, Criteria.model_validate(raw), TODAY)
        assert got.breakdowns["age_band"] == age_bands(attributes, raw, TODAY)
        assert sum(got.breakdowns["sex"].values()) == got.total


def test_cells_follow_the_day(base: snapshot.Snapshot, attributes: pl.DataFrame) -> None:
    """A birthday moves a prospect to the next band the day it happens: the cells are made
    again when the day changes (forwards: updated; backwards: rebuilt)."""
    e = Engine(base)
    c = Criteria.model_validate({"regions": ["11", "93"]})
    e.sync_eligibility(TODAY, 3, NONE)
    first = assert_same(e, c, TODAY)
    later = date(2027, 11, 26)  # a year on: everyone a year older, same inactivity cutoff day
    e.sync_eligibility(later, 3, NONE)
    moved = assert_same(e, c, later)
    assert moved.breakdowns["age_band"] != first.breakdowns["age_band"]
    assert moved.breakdowns["age_band"] == age_bands(attributes, {"regions": ["11", "93"]}, later)
    e.sync_eligibility(TODAY, 3, NONE)  # a clock set back
    assert assert_same(e, c, TODAY) == first


def test_a_day_the_cells_were_not_made_for_counts_the_same(engine: Engine) -> None:
    """A count asked for another day than the synced one falls back to the CASE."""
    c = Criteria.model_validate({"sex": ["M"], "age": {"min": 20, "max": 40}})
    assert_same(engine, c, date(2027, 6, 1))
