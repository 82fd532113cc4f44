"""The attack suite of issue 13: can a customer estimate a group under the minimum (k = 100)?

Each family spends a quote budget the way a customer could and returns its estimate of |T| for
a target group T of 1 to 99 eligible prospects ("men 80+ in department 48"); the error is the
RMSE over many target groups, at several budgets (a curve: error against quotes spent). One
organisation's allowance is the daily quote budget (500) for 30 days: 15,000 quotes; five
colluding organisations have 75,000. Quote q of an organisation is asked on day q // 500 (the
base is refreshed daily: a new snapshot each day).

Families (each a function below, `family_*`):
1. `exclude`: pairs A_i = P_i u T and A_i with `exclude: T`, P_i a different padding each time
   (departments, a sex, csp values, an age range; 150 to 850 prospects: rounding step 10);
   estimate: the mean of shown(A_i) - shown(A_i minus T).
2. `no_exclude`: the same without `exclude`: age ranges that stop short of T (department d,
   sex s, ages b..105 against b..a-1), then complementary department lists (sex s, ages a+ in
   departments {d} u S_i against S_i).
3. `triples`: |P u T u U| - |P| - |U|, P and U disjoint department lists (every two sets asked
   differ by hundreds); one triple in four without T calibrates the rounding.
4. `rewording`: one pair asked again and again in other words (the same sets) on one day.
5. `cells`: pairs as in 1 with breakdowns: every cell holding all of T (department, region,
   sex, age band, csp) is one more difference per quote.
6. `collusion`: family 1 with five organisations' allowances (quotes dealt round-robin).
7. `days`: m fixed pairs, each asked once a day for 30 days (fresh noise from each refresh
   alone), m = 1, 10, 50, 250 (60 to 15,000 quotes).
8. `membership`: one person alone with their (commune, sex, age), present or absent with equal
   odds; family 1 around them; guessed "present" when the mean difference is at least 1/2
   (`mean_rule`), or when any pair differs (`any_difference_rule`: with `exclude` removing
   nobody, the two sets are the same set).

Not counts, so not here: reports of a sending order read minutes apart, waves whose existence
shows a small calendar, an empty cell told from a small one, and an exhausted segment's exact
size in what is sent and billed. Each is a yes-or-no leak, closed by a rule and played as an
attack through the product by a test (tests/reports/test_in_progress.py, test_shape.py,
tests/dispatch/test_waves.py, test_volume.py, tests/sales/test_quote_cells.py).

Utility: for sets of about 1,000, 10,000 and 100,000 prospects, the p95 of |shown - exact| /
exact over many distinct sets.

    python -m bench.privacy --rows 1000000            # the full run (make bench)
    python -m bench.privacy --quick                   # 200k base, fewer groups and budgets
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from bench.common import emit, ensure_base
from bench.privacy_mechanisms import MECHANISMS, Mechanism, MechanismFactory, Today, bench_sample
from bench.privacy_sets import (
    Index,
    NoSet,
    Population,
    Sets,
    Target,
    absent,
    isolated_people,
    load,
    target_groups,
)
from datasets import snapshot
from kit.settings import PrivacySettings

DAILY: int = PrivacySettings.model_fields["daily_quote_budget"].default
DAYS = 30
ORGS = 5
PRIOR = 50.0  # the attacker's guess with nothing to go on: the middle of 1..99
# Padding sizes: a set and the set with T (99 at most) stay within 100..1,000 whatever the
# noise (bounded at 30), so neither is ever hidden and both are rounded to 10s (a pair across
# 1,000 would mix steps of 10 and 100: a biased difference).
PAD = (150, 850)
TARGETS = {
    "rmse_one_organisation_30_days_at_least": 10,
    "rmse_five_organisations_30_days_at_least": 5,
    "membership_accuracy_at_most": 0.6,
    "utility_p95_relative_error_at_most": {"1000": 0.10, "10000": 0.03, "100000": 0.01},
}


@dataclass(frozen=True)
class Plan:
    budgets: tuple[int, ...] = (100, 500, 2_000, 15_000)
    collusion_budgets: tuple[int, ...] = (100, 500, 2_000, 15_000, 75_000)
    day_pairs: tuple[int, ...] = (1, 10, 50, 250)
    groups: int = 40
    trials: int = 100
    utility_sets: int = 1_000


QUICK = Plan(
    budgets=(100, 500, 2_000),
    collusion_budgets=(100, 500, 2_000, 5_000),
    day_pairs=(1, 10),
    groups=8,
    trials=30,
    utility_sets=100,
)


class Spend:
    """Quotes asked of a mechanism by `orgs` organisations, each `DAILY` a day."""

    def __init__(self, mech: Mechanism, ids: Index, orgs: int = 1, one_day: bool = False):
        self.mech, self.ids, self.orgs, self.one_day = mech, ids, orgs, one_day
        self.q = 0

    def _where(self) -> tuple[int, int]:
        org, day = self.q % self.orgs, 0 if self.one_day else (self.q // self.orgs) // DAILY
        self.q += 1
        return org, day

    def shown(self, idx: Index) -> int | None:
        org, day = self._where()
        return self.mech.shown(self.ids[idx], organisation=org, day=day)

    def shown_cells(self, a: Index, cells: Sequence[Index]) -> tuple[int | None, list[int | None]]:
        org, day = self._where()
        return self.mech.shown_cells(
            self.ids[a], [self.ids[c] for c in cells], organisation=org, day=day
        )


class Mean:
    """A running mean of the differences seen, PRIOR while there are none."""

    def __init__(self) -> None:
        self.total, self.n, self.nonzero = 0.0, 0, False
        self.spent = 0

    def add(self, x: int | None, y: int | None) -> None:
        if x is not None and y is not None:
            self.total += x - y
            self.n += 1
            self.nonzero |= x != y

    @property
    def value(self) -> float:
        return self.total / self.n if self.n else PRIOR

    @property
    def estimate(self) -> Estimate:
        return self.value, self.spent


Pair = tuple[Index, Index]


def _pairs(spend: Spend, pairs: Callable[[], Pair], budgets: Sequence[int]) -> list[Mean]:
    """Spend each budget in turn on pairs; the running mean after each (snapshots of it, with
    the quotes actually spent)."""
    mean, out = Mean(), []
    for b in budgets:
        while spend.q + 2 <= b:
            try:
                a, c = pairs()
            except NoSet:  # nothing more to ask: the estimate stays as it is
                break
            mean.add(spend.shown(a), spend.shown(c))
        snap = Mean()
        snap.total, snap.n, snap.nonzero, snap.spent = mean.total, mean.n, mean.nonzero, spend.q
        out.append(snap)
    return out


def _padded(sets: Sets) -> Callable[[], Pair]:
    def pair() -> Pair:
        p = sets.padding(*PAD)
        return np.concatenate([p, sets.t.members]), p

    return pair


Estimate = tuple[float, int]  # the estimate of |T| and the quotes actually spent for it
Family = Callable[[MechanismFactory, Population, Target, int, Plan], list[Estimate]]


def family_exclude(
    make: MechanismFactory, pop: Population, t: Target, seed: int, plan: Plan
) -> list[Estimate]:
    sets = Sets(pop, t, np.random.default_rng(seed))
    return [m.estimate for m in _pairs(Spend(make(), pop.ids), _padded(sets), plan.budgets)]


def family_no_exclude(
    make: MechanismFactory, pop: Population, t: Target, seed: int, plan: Plan
) -> list[Estimate]:
    sets = Sets(pop, t, np.random.default_rng(seed))
    cuts = sets.age_cuts(PAD[1] + t.size)

    def pair() -> Pair:
        if cuts:
            return cuts.pop(0)
        x = sets.department_list(*PAD)
        return np.concatenate([x, t.members]), x

    return [m.estimate for m in _pairs(Spend(make(), pop.ids), pair, plan.budgets)]


def family_triples(
    make: MechanismFactory, pop: Population, t: Target, seed: int, plan: Plan
) -> list[Estimate]:
    """One triple in four leaves T out: |P u U| - |P| - |U| measures what rounding adds to
    such a sum (rounding down three times), subtracted from the others' mean."""
    sets = Sets(pop, t, np.random.default_rng(seed))
    spend, mean, null, out = Spend(make(), pop.ids), Mean(), Mean(), []
    n = 0
    for b in plan.budgets:
        while spend.q + 3 <= b:
            try:
                # Halves of PAD: the union with T stays under 1,000 too.
                p = sets.department_list(PAD[0], PAD[1] // 2)
                u = sets.department_list(PAD[0], PAD[1] // 2, avoid=p)
            except NoSet:
                break
            calibrating, n = n % 4 == 3, n + 1
            inner = t.members[:0] if calibrating else t.members
            whole, sp = spend.shown(np.concatenate([p, inner, u])), spend.shown(p)
            su = spend.shown(u)
            if whole is not None and sp is not None and su is not None:
                (null if calibrating else mean).add(whole - sp - su, 0)
        offset = null.total / null.n if null.n else 0.0
        out.append((mean.value - offset if mean.n else PRIOR, spend.q))
    return out


def family_rewording(
    make: MechanismFactory, pop: Population, t: Target, seed: int, plan: Plan
) -> list[Estimate]:
    sets = Sets(pop, t, np.random.default_rng(seed))
    fixed = _padded(sets)()
    spend = Spend(make(), pop.ids, one_day=True)
    return [m.estimate for m in _pairs(spend, lambda: fixed, plan.budgets)]


def family_cells(
    make: MechanismFactory, pop: Population, t: Target, seed: int, plan: Plan
) -> list[Estimate]:
    sets = Sets(pop, t, np.random.default_rng(seed))
    spend, mean, out = Spend(make(), pop.ids), Mean(), []
    for b in plan.budgets:
        while spend.q + 2 <= b:
            p = sets.padding(*PAD)
            a = np.concatenate([p, t.members])
            cells_a = sets.cells(a, PAD[0])
            cells_p = [c[~np.isin(c, t.members)] for c in cells_a]
            ta, ca = spend.shown_cells(a, cells_a)
            tp, cp = spend.shown_cells(p, cells_p)
            for x, y in zip([ta, *ca], [tp, *cp], strict=True):
                mean.add(x, y)
        out.append((mean.value, spend.q))
    return out


def family_collusion(
    make: MechanismFactory, pop: Population, t: Target, seed: int, plan: Plan
) -> list[Estimate]:
    sets = Sets(pop, t, np.random.default_rng(seed))
    spend = Spend(make(), pop.ids, orgs=ORGS)
    return [m.estimate for m in _pairs(spend, _padded(sets), plan.collusion_budgets)]


def family_days(
    make: MechanismFactory, pop: Population, t: Target, seed: int, plan: Plan
) -> list[Estimate]:
    out = []
    for m in plan.day_pairs:
        sets = Sets(pop, t, np.random.default_rng(seed))
        fixed = [_padded(sets)() for _ in range(m)]
        mech, mean = make(), Mean()
        for day in range(DAYS):  # one organisation: m <= 250 pairs fit a day's allowance
            for a, c in fixed:
                mean.add(
                    mech.shown(pop.ids[a], organisation=0, day=day),
                    mech.shown(pop.ids[c], organisation=0, day=day),
                )
        out.append((mean.value, 2 * DAYS * m))
    return out


FAMILIES: dict[str, tuple[Family, Callable[[Plan], Sequence[int]]]] = {
    "exclude": (family_exclude, lambda p: p.budgets),
    "no_exclude": (family_no_exclude, lambda p: p.budgets),
    "triples": (family_triples, lambda p: p.budgets),
    "rewording": (family_rewording, lambda p: p.budgets),
    "cells": (family_cells, lambda p: p.budgets),
    "collusion": (family_collusion, lambda p: p.collusion_budgets),
    "days": (family_days, lambda p: [2 * DAYS * m for m in p.day_pairs]),
}


def membership(
    make: MechanismFactory, pop: Population, plan: Plan, seed: int = 0
) -> dict[str, Any]:
    """Accuracy of guessing whether one isolated person is in the base, at each budget. Each
    person is present or absent with equal odds; the balanced accuracy (the mean of the
    accuracies on present and on absent people) is what the guess is worth at equal odds,
    without the luck of how many of the trials drew "present"."""
    people = isolated_people(pop, plan.trials, seed)
    rng = np.random.default_rng(seed)
    right_mean = {True: np.zeros(len(plan.budgets)), False: np.zeros(len(plan.budgets))}
    right_any = {True: np.zeros(len(plan.budgets)), False: np.zeros(len(plan.budgets))}
    trials = {True: 0, False: 0}
    for i, person in enumerate(people):
        present = bool(rng.random() < 0.5)
        t = person if present else absent(person)
        sets = Sets(pop, t, np.random.default_rng(seed * 100_003 + i))
        means = _pairs(Spend(make(), pop.ids), _padded(sets), plan.budgets)
        trials[present] += 1
        right_mean[present] += np.array([(m.value >= 0.5) == present for m in means])
        right_any[present] += np.array([m.nonzero == present for m in means])
    n = max(len(people), 1)

    def overall(right: dict[bool, np.ndarray]) -> list[float]:
        return [round(float(x) / n, 3) for x in right[True] + right[False]]

    def balanced(right: dict[bool, np.ndarray]) -> list[float]:
        rates = [right[p] / max(trials[p], 1) for p in (True, False)]
        return [round(float(x) / 2, 3) for x in rates[0] + rates[1]]

    return {
        "trials": len(people),
        "present_trials": trials[True],
        "quotes": list(plan.budgets),
        "accuracy_mean_rule": overall(right_mean),
        "accuracy_any_difference_rule": overall(right_any),
        "balanced_accuracy_mean_rule": balanced(right_mean),
        "balanced_accuracy_any_difference_rule": balanced(right_any),
        "right_on_present_mean_rule": [
            round(float(x) / max(trials[True], 1), 3) for x in right_mean[True]
        ],
    }


def utility(make: MechanismFactory, pop: Population, plan: Plan, seed: int = 0) -> dict[str, Any]:
    """p95 relative error of shown against exact counts, over distinct sets of each size."""
    sets = Sets(pop, target_groups(pop, 1, seed)[0], np.random.default_rng(seed))
    mech, out = make(), {}
    for size in (1_000, 10_000, 100_000):
        if size * 1.25 > len(pop):
            continue
        errors = []
        for q, idx in enumerate(sets.windows(size, plan.utility_sets)):
            shown = mech.shown(pop.ids[idx], organisation=0, day=q // DAILY)
            errors.append(1.0 if shown is None else abs(shown - len(idx)) / len(idx))
        out[str(size)] = {
            "sets": len(errors),
            "p50_relative_error": round(float(np.percentile(errors, 50)), 5),
            "p95_relative_error": round(float(np.percentile(errors, 95)), 5),
        }
    return out


def rmse(estimates: Sequence[float], truths: Sequence[int]) -> float:
    return math.sqrt(
        sum((e - t) ** 2 for e, t in zip(estimates, truths, strict=True)) / len(truths)
    )


def attacked(
    estimates: Sequence[float], truths: Sequence[int], spent: Sequence[int], budget: int
) -> tuple[list[float], list[int]]:
    keep = [i for i, q in enumerate(spent) if q >= budget - 2]
    return [estimates[i] for i in keep] or [0.0], [truths[i] for i in keep] or [0]


def measure(name: str, make: MechanismFactory, pop: Population, plan: Plan) -> dict[str, Any]:
    """Every family against one mechanism: the same targets, sets and budgets for any."""
    groups = target_groups(pop, plan.groups)
    truths = [g.size for g in groups]
    families: dict[str, Any] = {}
    for fam, (run_family, budgets) in FAMILIES.items():
        t0 = time.perf_counter()
        per_group = [run_family(make, pop, g, 1_000 * i + 7, plan) for i, g in enumerate(groups)]
        by_budget = [[e for e, _ in col] for col in zip(*per_group, strict=True)]
        spent = [[q for _, q in col] for col in zip(*per_group, strict=True)]
        families[fam] = {
            "quotes": list(budgets(plan)),
            # Fewer than `quotes` when no more distinct sets of that kind exist around a group.
            "quotes_spent_mean": [round(sum(q) / len(q)) for q in spent],
            "groups_fully_spent": [
                sum(x >= b - 2 for x in q) for q, b in zip(spent, budgets(plan), strict=True)
            ],
            "rmse": [round(rmse(e, truths), 2) for e in by_budget],
            # Without the groups around which no set of that kind exists (their estimate is
            # the prior, 50): the family's strength where it can be carried out at all.
            "rmse_groups_attacked": [
                round(rmse(*attacked(e, truths, q, b)), 2)
                for e, q, b in zip(by_budget, spent, budgets(plan), strict=True)
            ],
            "mean_error": [
                round(sum(x - t for x, t in zip(e, truths, strict=True)) / len(truths), 2)
                for e in by_budget
            ],
            "seconds": round(time.perf_counter() - t0, 1),
        }
    return {
        "mechanism": name,
        "families": families,
        "membership": membership(make, pop, plan),
        "utility": utility(make, pop, plan),
    }


def population(rows: int) -> Population:
    base = snapshot.current(ensure_base(rows) / "base")
    as_of = date.fromisoformat(base.manifest["as_of"])
    return load(pl.read_parquet(base.attributes), as_of)


def _today_at(rate: float) -> Mechanism:
    return Today(bench_sample(rate))


def run(
    rows: int,
    plan: Plan,
    mechanisms: Sequence[str] = ("cell-key", "today"),
    sample_rates: Sequence[float] = (),
    membership_only: bool = False,
) -> dict[str, Any]:
    """Every family against each named mechanism (the baseline `cell-key` and the product's
    `today` by default), and against the product's mechanism at other sample rates (named
    `today_rate_<r>`): the trade-off between the attack's error and accuracy, measured."""
    factories = {m: MECHANISMS[m] for m in mechanisms}
    for r in sample_rates:
        factories[f"today_rate_{r:g}"] = partial(_today_at, r)
    t0 = time.perf_counter()
    pop = population(rows)
    groups = target_groups(pop, plan.groups)
    return {
        "rows": rows,
        "eligible": len(pop),
        "budget": {"daily_quotes": DAILY, "days": DAYS, "colluding_organisations": ORGS},
        "target_group_sizes": [g.size for g in groups],
        "target_groups": [g.label for g in groups],
        "targets": TARGETS,
        "mechanisms": {
            m: {"mechanism": m, "membership": membership(f, pop, plan)}
            if membership_only
            else measure(m, f, pop, plan)
            for m, f in factories.items()
        },
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="200k base, fewer groups and budgets")
    ap.add_argument("--groups", type=int, help="target groups (default 40, quick 8)")
    ap.add_argument("--mechanism", action="append", choices=sorted(MECHANISMS))
    ap.add_argument(
        "--sample-rate",
        action="append",
        type=float,
        default=[],
        help="also the product's mechanism at this sample rate (repeatable, e.g. 0.2)",
    )
    ap.add_argument("--membership-only", action="store_true", help="only the membership test")
    args = ap.parse_args()
    plan = QUICK if args.quick else Plan()
    if args.groups:
        plan = Plan(**{**plan.__dict__, "groups": args.groups})
    rows = 200_000 if args.quick else args.rows
    # The baseline and the product by default; only the rates asked for when there are some.
    mechanisms = args.mechanism or ([] if args.sample_rate else ["cell-key", "today"])
    name = f"privacy_{rows}" + ("_rates" if args.sample_rate else "")  # the table keeps its file
    name += "_membership" if args.membership_only else ""
    emit(name, run(rows, plan, mechanisms, args.sample_rate, args.membership_only))


if __name__ == "__main__":
    main()
