"""Sets of prospects as a customer's criteria would produce them, built on id arrays (numpy) so
that the attack suite can ask tens of thousands of quotes per target group.

The population is the base's eligible prospects (SMS opt-in, interaction within 3 years) with
the attributes criteria test: department, region, sex, age, socio-professional group. Every set
here is one a criteria document can express (departments, sex, csp lists, an age range,
`exclude`); sets are kept as indices into the population, ids only for the mechanism.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from datasets import reference
from segmentation.compiler import years_before

Index = npt.NDArray[np.int64]
AGE_BANDS = reference.AGE_BANDS
INACTIVITY_YEARS = 3  # RENTAL_INACTIVITY_YEARS's default


@dataclass(frozen=True)
class Population:
    ids: npt.NDArray[np.int64]
    department: npt.NDArray[np.int32]  # codes into `departments`
    region: npt.NDArray[np.int32]
    sex: npt.NDArray[np.int8]  # 0 F, 1 M
    age: npt.NDArray[np.int16]
    csp: npt.NDArray[np.int8]
    commune: npt.NDArray[np.int32]
    departments: list[str]
    today: date
    by_department: list[Index] = field(default_factory=list)  # indices of each department

    def __len__(self) -> int:
        return len(self.ids)


def load(attributes: pl.DataFrame, today: date) -> Population:
    """The eligible prospects of a base's attributes, as the engine counts them on `today`."""
    cutoff = years_before(today, INACTIVITY_YEARS)
    df = attributes.filter(pl.col("opt_in") & (pl.col("last_interaction") >= cutoff)).select(
        "prospect_id",
        pl.col("department").cast(pl.String),
        pl.col("region").cast(pl.String),
        (pl.col("sex").cast(pl.String) == "M").cast(pl.Int8).alias("sex"),
        (
            today.year
            - pl.col("birth_date").dt.year()
            - (
                (  # Int8 month and day: widen before combining them
                    pl.col("birth_date").dt.month().cast(pl.Int32) * 100
                    + pl.col("birth_date").dt.day().cast(pl.Int32)
                )
                > today.month * 100 + today.day
            ).cast(pl.Int32)
        )
        .cast(pl.Int16)
        .alias("age"),
        pl.col("csp").cast(pl.String).cast(pl.Int8),
        pl.col("commune").cast(pl.String),
    )
    departments = sorted(df["department"].unique().to_list())
    regions = sorted(df["region"].unique().to_list())
    dep = df["department"].replace_strict(departments, list(range(len(departments)))).to_numpy()
    reg = df["region"].replace_strict(regions, list(range(len(regions)))).to_numpy()
    # Codes in the order of the commune codes (a categorical's physical codes follow the order
    # strings were met, which varies between runs: the isolated people drawn with them did).
    commune = df["commune"].rank("dense").to_numpy()
    order = np.argsort(dep, kind="stable")
    bounds = np.searchsorted(dep[order], np.arange(len(departments) + 1))
    return Population(
        ids=df["prospect_id"].to_numpy().astype(np.int64),
        department=dep.astype(np.int32),
        region=reg.astype(np.int32),
        sex=df["sex"].to_numpy(),
        age=df["age"].to_numpy(),
        csp=df["csp"].to_numpy(),
        commune=commune.astype(np.int32),
        departments=departments,
        today=today,
        by_department=[
            order[bounds[i] : bounds[i + 1]].astype(np.int64) for i in range(len(departments))
        ],
    )


def age_band(age: int) -> int:
    return max(i for i, (_, lo, _) in enumerate(AGE_BANDS) if age >= lo)


@dataclass(frozen=True)
class Target:
    """What the attacker wants to count: `members` (indices; empty when the person looked for
    is absent). `shield`: the indices no padding may contain (the members, or the one person
    whose presence is in question, in both worlds)."""

    label: str
    members: Index
    shield: Index
    department: int
    sex: int
    min_age: int

    @property
    def size(self) -> int:
        return len(self.members)


def target_groups(pop: Population, n: int, seed: int = 0) -> list[Target]:
    """`n` groups of 1 to 99 eligible prospects, "men (or women) aged `a`+ in department d",
    sizes spread evenly over 1..99, at most one group per (department, sex)."""
    rng = np.random.default_rng(seed)
    candidates: list[tuple[int, int, int, int]] = []  # size, department, sex, min_age
    for d, idx in enumerate(pop.by_department):
        for s in (0, 1):
            ages = np.sort(pop.age[idx[pop.sex[idx] == s]])
            for a in range(60, 106):
                size = len(ages) - int(np.searchsorted(ages, a))
                if 1 <= size <= 99:
                    candidates.append((size, d, s, a))
    used: set[tuple[int, int]] = set()
    out: list[Target] = []
    for want in np.linspace(1, 99, n):
        free = [c for c in candidates if (c[1], c[2]) not in used] or candidates
        best = min(abs(c[0] - want) for c in free)
        close = [c for c in free if abs(c[0] - want) == best]
        size, d, s, a = close[int(rng.integers(len(close)))]
        used.add((d, s))
        idx = pop.by_department[d]
        members = idx[(pop.sex[idx] == s) & (pop.age[idx] >= a)]
        label = f"{'MF'[1 - s]} {a}+ in {pop.departments[d]}"
        out.append(Target(label, members, members, d, s, a))
    return out


def isolated_people(pop: Population, n: int, seed: int = 0) -> list[Target]:
    """`n` people each alone with their (commune, sex, age), as targets present in the base;
    `absent` gives the world where the same person is not there."""
    key = (pop.commune.astype(np.int64) * 2 + pop.sex) * 128 + pop.age
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    alone = first[counts == 1]
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(alone, size=min(n, len(alone)), replace=False):
        p = np.array([i], dtype=np.int64)
        out.append(
            Target(
                "one person",
                p,
                p,
                int(pop.department[i]),
                int(pop.sex[i]),
                int(pop.age[i]),
            )
        )
    return out


def absent(t: Target) -> Target:
    return Target(t.label + " (absent)", t.members[:0], t.shield, t.department, t.sex, t.min_age)


class NoSet(Exception):
    """No set of the kind asked exists around this target (the base is too small for it)."""


class Sets:
    """Builders of the sets each attack family asks about, for one target."""

    def __init__(self, pop: Population, target: Target, rng: np.random.Generator) -> None:
        self.pop, self.t, self.rng = pop, target, rng
        region = pop.region[pop.by_department[target.department][0]]
        self.region_deps = [
            d
            for d, idx in enumerate(pop.by_department)
            if len(idx) and pop.region[idx[0]] == region
        ]
        shield = np.zeros(len(pop), dtype=bool)
        shield[target.shield] = True
        self._free = shield  # True: may not be used as padding
        # "sex s, age >= a" in each other department: the pieces of department lists (family 2).
        self.pieces: list[Index] = []
        for d, idx in enumerate(pop.by_department):
            if d != target.department:
                piece = idx[(pop.sex[idx] == target.sex) & (pop.age[idx] >= target.min_age)]
                if len(piece):
                    self.pieces.append(piece)

    def padding(self, lo: int, hi: int) -> Index:
        """A set of `lo` to `hi` prospects disjoint from the target, as criteria give it:
        departments (the target's region, sometimes one elsewhere), a sex, csp values and an
        age range."""
        pop, rng = self.pop, self.rng
        for _ in range(100):
            k = int(rng.integers(1, 4))
            deps = list(
                rng.choice(self.region_deps, size=min(k, len(self.region_deps)), replace=False)
            )
            if rng.random() < 0.3:
                deps.append(int(rng.integers(len(pop.by_department))))
            idx = np.concatenate([pop.by_department[d] for d in set(deps)])
            mask = ~self._free[idx]
            sex = int(rng.integers(3))
            if sex < 2:
                mask &= pop.sex[idx] == sex
            if rng.random() < 0.5:
                allowed = np.zeros(16, dtype=bool)
                allowed[
                    rng.choice(np.arange(1, 9), size=int(rng.integers(2, 7)), replace=False)
                ] = True
                mask &= allowed[pop.csp[idx]]
            idx = idx[mask]
            if len(idx) < lo:
                continue
            hist = np.cumsum(np.bincount(pop.age[idx], minlength=128))
            want = int(rng.integers(lo, hi + 1))
            start = int(rng.integers(18, 106))
            below = hist[start - 1]
            end = int(np.searchsorted(hist, below + want))
            size = int(hist[min(end, 127)] - below)
            if lo <= size <= hi:
                chosen: Index = idx[(pop.age[idx] >= start) & (pop.age[idx] <= end)]
                return chosen
        raise NoSet("no padding of that size around this target")

    def department_list(self, lo: int, hi: int, avoid: Index | None = None) -> Index:
        """ "sex s, age >= a" in a random list of other departments (the target's sex and age):
        a set that the target's department completes (family 2), `lo` to `hi` prospects."""
        rng = self.rng
        if sum(len(p) for p in self.pieces) < 2 * lo:  # lists of lo or more, twice (triples)
            raise NoSet("too few prospects of the target's sex and age elsewhere")
        for _ in range(100):
            want = int(rng.integers(lo, hi + 1))
            chosen: list[Index] = []
            total = 0
            for i in rng.permutation(len(self.pieces)):
                piece = self.pieces[i]
                if avoid is not None and len(avoid) and piece[0] in avoid:
                    continue
                if total + len(piece) > hi:
                    continue
                chosen.append(piece)
                total += len(piece)
                if total >= want:
                    break
            if lo <= total <= hi:
                return np.concatenate(chosen)
        raise NoSet("no department list of that size")

    def age_cuts(self, hi: int) -> list[tuple[Index, Index]]:
        """(department d, sex s, age b..105) and (same, age b..a-1) for b below a: the pairs of
        age ranges that stop short of the target, each at most `hi` prospects."""
        pop, t = self.pop, self.t
        idx = pop.by_department[t.department]
        idx = idx[(pop.sex[idx] == t.sex) & ~(self._free[idx] & ~np.isin(idx, t.members))]
        out = []
        for b in range(t.min_age - 1, 17, -1):
            whole = idx[pop.age[idx] >= b]
            if len(whole) > hi:
                break
            out.append((whole, whole[pop.age[whole] < t.min_age]))
        return out

    def cells(self, a: Index, least: int) -> list[Index]:
        """The breakdown cells of `a` that hold the whole target (department, region, sex, age
        band, csp when the target shares one), those that differ from `a` itself and hold at
        least `least` others: the attacker designs paddings whose cells stay well above k (it
        learns their rough size from earlier answers), so that no cell is shown only because
        its noise lifted it over k (selecting on shown values would bias the differences)."""
        pop, t = self.pop, self.t
        m = t.members
        out = []
        columns: list[npt.NDArray[np.integer[Any]]] = [pop.department, pop.region, pop.sex, pop.csp]
        for col in columns:
            values = np.unique(col[m]) if len(m) else col[t.shield]
            if len(values) == 1:
                cell = a[col[a] == values[0]]
                if len(a) != len(cell) >= least + len(m):
                    out.append(cell)
        bands = {age_band(int(x)) for x in pop.age[m if len(m) else t.shield]}
        if len(bands) == 1:
            lo = AGE_BANDS[bands.pop()][1]
            hi = AGE_BANDS[age_band(lo)][2]
            cell = a[(pop.age[a] >= lo) & (pop.age[a] <= hi)]
            if len(a) != len(cell) >= least + len(m):
                out.append(cell)
        return out

    def windows(self, size: int, count: int) -> list[Index]:
        """`count` distinct sets of about `size` prospects (within 20%): runs of the
        population in department order (whole departments and part of one or two)."""
        pop, rng = self.pop, self.rng
        order = np.concatenate(pop.by_department)
        out = []
        for _ in range(count):
            n = int(size * rng.uniform(0.8, 1.2))
            start = int(rng.integers(0, len(order) - n))
            out.append(order[start : start + n])
        return out
