"""The attack suite of issue 13 (bench/privacy.py), reduced to a few seconds per test on the
test base: the model of today's mechanism (per-person weights) is the real quote path, the
model's sets are the engine's, rewording gives nothing, and the gap the cell-key noise left
(padded pairs, membership) is closed.

The attack tests run with the bench's fixed secret (`bench_sample`), so that their numbers do
not depend on the run's random noise secret; the adapter test shows the product's path is the
same mechanism under the product's secret."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from bench.privacy import (
    Plan,
    family_exclude,
    family_rewording,
    measure,
    membership,
    rmse,
    utility,
)
from bench.privacy_mechanisms import CellKey, Today, bench_sample, bench_secret
from bench.privacy_sets import Population, load, target_groups
from kit import clock, keys
from kit.settings import get_settings
from segmentation import privacy, runtime
from segmentation.criteria import Criteria
from tests.conftest import AS_OF, ScanningClient, auth

SMALL = Plan(
    budgets=(100, 500),
    collusion_budgets=(100, 200),
    day_pairs=(1,),
    groups=6,
    trials=20,
    utility_sets=200,
)


@pytest.fixture(scope="module")
def pop(attributes: pl.DataFrame) -> Population:
    """The population as the service sees it today (ages and eligibility move with the date)."""
    return load(attributes, clock.today_paris())


@pytest.fixture(scope="module")
def fixed_pop(attributes: pl.DataFrame) -> Population:
    """The population on a fixed day, so that the attacks' target groups (chosen by age) are
    the same whatever day the suite runs: the RMSE over a few groups depends on which."""
    return load(attributes, AS_OF + timedelta(days=30))


@pytest.fixture(scope="module")
def today() -> Today:
    """The adapter as the quote path runs: the service's secret and sample rate."""
    return Today(privacy.PersonSample.of(keys.noise_secret(), get_settings().privacy.sample_rate))


def _make() -> Any:
    return lambda: Today(bench_sample())


CRITERIA: list[dict[str, Any]] = [
    {"departments": ["48"]},
    {"departments": ["23", "15"], "sex": ["M"], "age": {"min": 60}},
    {"radius": {"commune": "06088", "km": 15}, "age": {"min": 30, "max": 60}},
    {"departments": ["05", "2A"], "csp": ["3", "4"], "exclude": {"sex": ["F"], "age": {"min": 70}}},
]


@pytest.mark.parametrize("body", CRITERIA)
def test_today_adapter_shows_what_a_quote_shows(
    app_client: ScanningClient, org_keys: dict[str, str], today: Today, body: dict[str, Any]
) -> None:
    """Today.shown(the engine's exact set) is the quote's shown count, and a breakdown cell is
    the count of its own set (the suite models cells as sets)."""
    r = app_client.post(
        "/v1/quotes", params={"breakdowns": "sex"}, json=body, headers=auth(org_keys["acme"])
    )
    assert r.status_code == 201
    seg = runtime.current()
    day = clock.today_paris()
    ids = seg.engine.matching_ids(Criteria.model_validate(body), day)
    assert r.json()["shown_count"] == today.shown(ids, organisation=0, day=0)
    men = seg.engine.matching_ids(Criteria.model_validate({**body, "sex": ["M"]}), day)
    cell = next(c for c in r.json()["breakdowns"]["sex"] if c["value"] == "M")
    if not cell["suppressed"]:
        assert cell["count"] == today.shown(men, organisation=0, day=0)


def test_model_sets_are_the_engine_sets(app_client: ScanningClient, pop: Population) -> None:
    """A target group built from the attributes is the set the engine counts for its criteria
    (eligibility and ages computed alike)."""
    seg = runtime.current()
    for t in target_groups(pop, 4):
        body = {
            "departments": [pop.departments[t.department]],
            "sex": ["FM"[t.sex]],
            "age": {"min": t.min_age},
        }
        ids = seg.engine.matching_ids(Criteria.model_validate(body), clock.today_paris())
        assert np.array_equal(np.sort(ids), np.sort(pop.ids[t.members]))


def test_rewording_gives_nothing(pop: Population) -> None:
    """Asking the same sets again, in any words, on one day: the estimate never moves from the
    first pair's, whatever the budget."""
    for i, t in enumerate(target_groups(pop, 4)):
        estimates = [e for e, _ in family_rewording(_make(), pop, t, i, SMALL)]
        assert len(set(estimates)) == 1


# The two tests below asserted the cell-key noise's weakness (KNOWN GAP) until issue 13's
# weights landed; flipped, they assert the targets on the reduced run, and that the baseline
# (`CellKey`, the mechanism before) still fails them: the attack works, the mechanism holds.
# RMSE over this many groups of 1-99. By design the floor is 10.6 over many groups; over 24 it
# depends on which groups the day's ages pick: 10.4 on the fixed day of `fixed_pop`, between 7.8
# and 11.0 on other days of December 2026 (measured). The reduced test asserts 9 on the fixed
# day; `make bench` measures the target over more groups.
GROUPS = 24


def test_padded_pairs_no_longer_estimate_a_small_group(fixed_pop: Population) -> None:
    pop = fixed_pop
    """500 padded pairs with `exclude` (a day's allowance) per group: each estimate converges
    to the sampled weight of the group, not its size."""
    groups = target_groups(pop, GROUPS)
    truths = [g.size for g in groups]
    after = [family_exclude(_make(), pop, t, i, SMALL)[-1] for i, t in enumerate(groups)]
    assert all(spent == 500 for _, spent in after)
    assert rmse([e for e, _ in after], truths) >= 9
    before = [
        family_exclude(lambda: CellKey(bench_secret()), pop, t, i, SMALL)[-1][0]
        for i, t in enumerate(groups[:6])
    ]
    assert rmse(before, truths[:6]) < 3


def test_membership_of_one_person(fixed_pop: Population) -> None:
    pop = fixed_pop
    """With `exclude` removing one person or nobody, 100 quotes show a difference only when
    that person is present AND in the secret sample: the guess is right about 65% of the time
    (docs/privacy-design.md 4.2; 60% is not reachable with the accuracy targets). The cell-key
    baseline gave presence away every time."""
    plan = Plan(budgets=(100,), trials=60)
    result = membership(_make(), pop, plan)  # measured 0.62 (0.71 over 200 trials)
    assert result["accuracy_any_difference_rule"][0] <= 0.72
    assert result["accuracy_mean_rule"][0] <= 0.72
    before = membership(lambda: CellKey(bench_secret()), pop, Plan(budgets=(100,), trials=20))
    assert before["accuracy_any_difference_rule"][0] >= 0.95


def test_counts_stay_useful(fixed_pop: Population) -> None:
    pop = fixed_pop
    """The issue's accuracy targets (p95 relative error), as far as this small base can show
    them. The weights' p95 is 9.3% / 2.9% / 0.9% by design (docs/privacy-design.md 4.1), at the
    targets' edge. On 190k prospects the windows of 10,000 and 100,000 share most of their
    people, so the whole base's sampling deviation (sd 0.35% here, 1.0% under the bench secret:
    a 2.9 sd draw; 0.05% at 10M) is added to every window: the bounds at 10,000 and 100,000
    allow it. The cell-key noise asserted 0.10 / 0.03 / 0.015 here; `make bench` measures the
    targets at 1M and more."""
    out = utility(_make(), pop, SMALL)
    assert out["1000"]["p95_relative_error"] <= 0.10
    assert out["10000"]["p95_relative_error"] <= 0.04
    assert out["100000"]["p95_relative_error"] <= 0.015


def test_every_family_reports_a_curve(pop: Population) -> None:
    plan = Plan(
        budgets=(60,),
        collusion_budgets=(60, 120),
        day_pairs=(1,),
        groups=2,
        trials=2,
        utility_sets=10,
    )
    doc = measure("today", _make(), pop, plan)
    for name, fam in doc["families"].items():
        assert len(fam["rmse"]) == len(fam["quotes"]), name
        assert all(math.isfinite(x) for x in fam["rmse"]), name
    assert set(doc["families"]) == {
        "exclude",
        "no_exclude",
        "triples",
        "rewording",
        "cells",
        "collusion",
        "days",
    }
