"""Prototype of issue 13's count mechanism, written to the attack suite's plug-in protocol.

A mechanism is an object with `shown(ids, *, organisation, day) -> int | None` (None: "fewer
than k"), where `ids` are the prospect ids of the exact set counted. Stateful is allowed.

- `Today`: the cell-key method the product used before issue 13 (bench.privacy_mechanisms.
  CellKey), with a new noise draw per day as the daily base refresh gives it.
- `PersonWeights`: sticky per-person weights. Each prospect carries a secret weight w_p of mean 1
  drawn once from its (refresh-stable) id; a count shows sum_{p in S} w_p, rounded. Any linear
  combination of sets that isolates a group T leaves exactly |T| + sum_{p in T} (w_p - 1): the
  same value however often, by whoever, on whatever day it is asked, so nothing averages.
  `sample` shape (recommended): w_p = 1/r for a secret fraction r of people and 0 otherwise,
  which puts the most mass at w_p = 0 (membership hidden) for a given variance. `spread`
  shape: w_p in {-1..3}, the same variance, for comparison.
- `Remembering(inner)`: a memory of answered sets shared by every organisation and keyed by
  people (a bucket histogram of the set's ids): a set within fewer than k people of a
  remembered one gets the remembered answer, so pairs of any kind (exclude, complementary
  lists, ranges stopping short, one day apart) show a difference of 0. Each reuse is an audit
  flag. Triples and longer combinations go through: they hit the floor of the weights.

`python -m bench.privacy_proposal --selfcheck` runs the attack families on synthetic id sets and
prints JSON (the numbers of docs/privacy-design.md); `--latency` times the extra aggregate a
quote pays in DuckDB at 10M prospects.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bench.privacy_mechanisms import CellKey, cell_key_step
from segmentation.privacy import mix

K = 100
SECRET = b"prototype secret: the product uses keys.noise_secret()"
SAMPLE_RATE = 1 / 3.25  # weight 3.25: var(w) = 1/r - 1 = 2.25, P(w = 0) = 0.692
SKETCH_BUCKETS = 256
COARSE_BUCKETS = 16  # a first filter: sums of 16 buckets each

Array = np.ndarray[Any, Any]


class Mechanism(Protocol):
    def shown(self, ids: Array, *, organisation: int, day: int) -> int | None: ...


def _salt(label: str) -> np.uint64:
    digest = hashlib.sha256(SECRET + label.encode()).digest()
    return np.uint64(int.from_bytes(digest[:8], "big"))


def person_uniform(ids: Array, label: str) -> Array:
    """A secret uniform draw in [0, 1) per person, the same on every snapshot (ids are stable)."""
    return (mix(ids.astype(np.uint64) ^ _salt(label)) >> np.uint64(11)).astype(np.float64) / 2.0**53


def step(value: float) -> int:
    """Shown precision: at most 0.05% of the value from 10,000 up, so rounding costs nothing
    against the accuracy targets (today's steps, rounded down, cost up to 1% at 100,000)."""
    if value < 100_000:
        return 10
    if value < 10_000_000:
        return 100
    return 1_000


class Today:
    """The product's mechanism: cell-key Laplace noise, rounded down; a new draw each day."""

    name = "today"

    def shown(self, ids: Array, *, organisation: int, day: int) -> int | None:
        return CellKey(SECRET).shown(ids, organisation=organisation, day=day)


@dataclass
class PersonWeights:
    """Sticky per-person weights; the shown count is their sum over the set, rounded."""

    shape: str = "sample"  # "sample" (recommended) or "spread"
    rate: float = SAMPLE_RATE
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"person-{self.shape}"

    def weights(self, ids: Array) -> Array:
        u = person_uniform(ids, "weight")
        if self.shape == "sample":
            return np.where(u < self.rate, 1.0 / self.rate, 0.0)
        # {-1, 0, 1, 2, 3} with mean 1 and variance 2.25: P(w = 0) = 0.25
        edges = np.array([0.21875, 0.46875, 0.53125, 0.78125])
        return np.searchsorted(edges, u, side="right").astype(np.float64) - 1.0

    def value(self, ids: Array) -> float:
        return float(self.weights(ids).sum())

    def shown(self, ids: Array, *, organisation: int, day: int) -> int | None:
        if len(ids) < K:
            return None
        v = self.value(ids)
        if v < K:
            return None
        s = step(v)
        return int(round(v / s)) * s


def sketch(ids: Array) -> Array:
    """How many of the set's people fall in each of SKETCH_BUCKETS secret buckets. For two sets,
    the L1 distance of their sketches is a lower bound of their symmetric difference, exact when
    one contains the other (a pair with `exclude`, a range stopping short)."""
    bucket = mix(ids.astype(np.uint64) ^ _salt("bucket")) >> np.uint64(56)
    return np.bincount(bucket.astype(np.int64), minlength=SKETCH_BUCKETS).astype(np.int32)


@dataclass(frozen=True)
class Flag:
    """An answer given from memory: the audit trail of an attack-like series."""

    organisation: int
    day: int
    size: int
    distance: int
    remembered_organisation: int


class Remembering:
    """A memory of answered sets, for every organisation: a set within fewer than k people
    (sketch distance) of a remembered one gets the remembered answer."""

    def __init__(self, inner: PersonWeights | Today, retention_days: int = 60) -> None:
        self.inner = inner
        self.name = f"{inner.name}+memory"
        self.retention_days = retention_days
        self._n = 0
        self._sizes = np.zeros(1024, dtype=np.int64)
        self._days = np.zeros(1024, dtype=np.int64)
        self._orgs = np.zeros(1024, dtype=np.int64)
        self._answers: list[int | None] = []
        self._sketches = np.zeros((1024, SKETCH_BUCKETS), dtype=np.int32)
        self._coarse = np.zeros((1024, COARSE_BUCKETS), dtype=np.int32)
        self.flags: list[Flag] = []

    def _near(self, size: int, sk: Array, day: int) -> tuple[int, int] | None:
        """The nearest remembered set within fewer than k people, and its sketch distance.
        Each filter is a lower bound of the symmetric difference, so none drops a near set:
        sizes (||S| - |R|| <= |S xor R|), then coarse buckets (merging buckets only adds
        cancellations), then the full sketch."""
        n = self._n
        cand = np.flatnonzero(
            (np.abs(self._sizes[:n] - size) < K) & (self._days[:n] > day - self.retention_days)
        )
        if len(cand):
            coarse = sk.reshape(COARSE_BUCKETS, -1).sum(axis=1)
            cand = cand[np.abs(self._coarse[cand] - coarse).sum(axis=1) < K]
        if not len(cand):
            return None
        dist = np.abs(self._sketches[cand] - sk).sum(axis=1)
        best = int(np.argmin(dist))
        return (int(cand[best]), int(dist[best])) if dist[best] < K else None

    def _remember(self, size: int, sk: Array, day: int, org: int, answer: int | None) -> None:
        n = self._n
        if n == len(self._sizes):
            grow = len(self._sizes)
            self._sizes = np.concatenate([self._sizes, np.zeros(grow, dtype=np.int64)])
            self._days = np.concatenate([self._days, np.zeros(grow, dtype=np.int64)])
            self._orgs = np.concatenate([self._orgs, np.zeros(grow, dtype=np.int64)])
            self._sketches = np.concatenate([self._sketches, np.zeros_like(self._sketches)])
            self._coarse = np.concatenate([self._coarse, np.zeros_like(self._coarse)])
        self._sizes[n], self._days[n], self._orgs[n] = size, day, org
        self._sketches[n] = sk
        self._coarse[n] = sk.reshape(COARSE_BUCKETS, -1).sum(axis=1)
        self._answers.append(answer)
        self._n = n + 1

    def shown(self, ids: Array, *, organisation: int, day: int) -> int | None:
        sk = sketch(ids)
        near = self._near(len(ids), sk, day)
        if near is not None:
            i, distance = near
            if distance > 0:
                self.flags.append(Flag(organisation, day, len(ids), distance, int(self._orgs[i])))
            return self._answers[i]
        answer = self.inner.shown(ids, organisation=organisation, day=day)
        self._remember(len(ids), sk, day, organisation, answer)
        return answer


# --- attack families on synthetic id sets -------------------------------------------------

QUOTES_PER_DAY = 500
DAYS = 30


class Universe:
    """Fresh random 62-bit prospect ids for each group (collisions: about 1 in 10^9 per run)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def take(self, n: int) -> Array:
        return self.rng.integers(1, 2**62, size=n, dtype=np.int64)


def seen(mech: Mechanism, shown: int | None) -> float | None:
    """What the attacker takes a shown count for: today's counts are rounded DOWN to a public
    step, so half a step is added back (the attacker knows the rule)."""
    if shown is None:
        return None
    return shown + cell_key_step(shown) / 2 if isinstance(mech, Today) else float(shown)


def _quote_clock(q: int, orgs: int) -> tuple[int, int]:
    """Organisation and day of the q-th quote of a series spread over orgs x 500 quotes/day."""
    return q % orgs, (q // orgs) // QUOTES_PER_DAY


def pair_attack(
    make: Callable[[], Mechanism],
    t: int,
    quotes: int,
    orgs: int,
    seed: int,
    checkpoints: Sequence[int],
) -> dict[int, float]:
    """shown(A_i u T) - shown(A_i), A_i padding of 200..900 people, averaged (`exclude`; a range
    stopping short or a complementary list is the same pair of sets)."""
    u = Universe(seed)
    mech, target = make(), u.take(t)
    diffs: list[float] = []
    out: dict[int, float] = {}
    q = 0
    while q + 2 <= quotes:
        pad = u.take(int(u.rng.integers(200, 900)))
        o, d = _quote_clock(q, orgs)
        a = seen(mech, mech.shown(np.concatenate([pad, target]), organisation=o, day=d))
        b = seen(mech, mech.shown(pad, organisation=(o + 1) % orgs, day=d))
        q += 2
        if a is not None and b is not None:
            diffs.append(a - b)
        for c in checkpoints:
            if q in (c, c + 1) and c not in out:
                out[c] = float(np.mean(diffs)) if diffs else 50.0
    out.setdefault(quotes, float(np.mean(diffs)) if diffs else 50.0)
    return out


def triple_attack(
    make: Callable[[], Mechanism],
    t: int,
    quotes: int,
    orgs: int,
    seed: int,
    checkpoints: Sequence[int],
) -> dict[int, float]:
    """shown(P u T u U) - shown(P) - shown(U), every pairwise difference large (>= 300); all
    three under 1,000 so that today's rounding step is 10."""
    u = Universe(seed)
    mech, target = make(), u.take(t)
    diffs: list[float] = []
    out: dict[int, float] = {}
    q = 0
    while q + 3 <= quotes:
        p = u.take(int(u.rng.integers(300, 450)))
        v = u.take(int(u.rng.integers(300, 450)))
        o, d = _quote_clock(q, orgs)
        a = seen(mech, mech.shown(np.concatenate([p, target, v]), organisation=o, day=d))
        b = seen(mech, mech.shown(p, organisation=o, day=d))
        c = seen(mech, mech.shown(v, organisation=o, day=d))
        q += 3
        if a is not None and b is not None and c is not None:
            diffs.append(a - b - c)
        for cp in checkpoints:
            if cp <= q < cp + 3 and cp not in out:
                out[cp] = float(np.mean(diffs)) if diffs else 50.0
    out.setdefault(quotes, float(np.mean(diffs)) if diffs else 50.0)
    return out


def rmse(errors: Sequence[float]) -> float:
    return float(math.sqrt(np.mean(np.square(errors))))


def attack_rmse(
    attack: Callable[..., dict[int, float]],
    make: Callable[[], Mechanism],
    targets: int,
    quotes: int,
    orgs: int,
    checkpoints: Sequence[int],
    seed: int,
) -> dict[str, Any]:
    """RMSE of the attack's estimate over targets of size uniform in 1..99, at each checkpoint;
    `shrunk`: the same estimate pulled towards the prior mean (50) by the weight a Bayesian
    attacker who knows the floor's variance (2.25 |T|) would give it."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 100, size=targets)
    errs: dict[int, list[float]] = {c: [] for c in checkpoints}
    shrunk: list[float] = []
    prior_var = (99**2 - 1) / 12
    floor_var = (1 / SAMPLE_RATE - 1) * 50
    for i, t in enumerate(sizes):
        est = attack(make, int(t), quotes, orgs, seed * 1000 + i, checkpoints)
        for c in checkpoints:
            errs[c].append(est.get(c, est[max(est)]) - t)
        final = est[max(est)]
        shrunk.append(50 + (final - 50) * prior_var / (prior_var + floor_var) - t)
    return {
        "rmse_by_quotes": {str(c): round(rmse(errs[c]), 2) for c in checkpoints},
        "rmse_shrunk_attacker": round(rmse(shrunk), 2),
    }


def membership(make: Callable[[], Mechanism], people: int, triples: int, seed: int) -> float:
    """One person isolated by attributes, present or absent with probability 1/2; the attacker
    averages `triples` triples (pairs would be answered from memory) and says "present" when
    the estimate exceeds 1/2. Returns the share guessed right."""
    rng = np.random.default_rng(seed)
    right = 0
    for i in range(people):
        present = bool(rng.integers(0, 2))
        est = triple_attack(make, 1 if present else 0, 3 * triples, 1, seed * 7919 + i, [])
        guess = est[max(est)] > 0.5
        right += guess == present
    return right / people


def utility(
    mech_factory: Callable[[], Mechanism], sizes: Sequence[int], sets: int, seed: int
) -> dict[str, Any]:
    """p95 relative error of fresh sets (no memory hit) of each size."""
    u = Universe(seed)
    out: dict[str, Any] = {}
    for n in sizes:
        mech = mech_factory()
        rel = []
        for _ in range(sets):
            ids = u.take(n)
            s = mech.shown(ids, organisation=0, day=0)
            rel.append(abs((s or 0) - n) / n)
        out[str(n)] = round(float(np.percentile(rel, 95)) * 100, 2)
    return out


def floor_only(ts: Sequence[int], seed: int) -> dict[str, float]:
    """What every linear attack converges to under person weights, without simulating quotes:
    sum_{p in T} w_p, for many random T. Also the membership accuracy of that floor."""
    u = Universe(seed)
    out: dict[str, float] = {}
    for shape in ("sample", "spread"):
        pw = PersonWeights(shape)
        errs = [pw.value(u.take(t)) - t for t in ts]
        single = pw.weights(u.take(100_000))
        accuracy = 0.5 + 0.5 * float(np.mean(single != 0))
        out[f"{shape}_rmse_1_99"] = round(rmse(errs), 2)
        out[f"{shape}_membership"] = round(accuracy, 3)
    return out


def selfcheck(targets: int, seed: int) -> dict[str, Any]:
    one, five = DAYS * QUOTES_PER_DAY, 5 * DAYS * QUOTES_PER_DAY
    mechs: dict[str, Callable[[], Mechanism]] = {
        "today": Today,
        "person-sample": PersonWeights,
        "person-sample+memory": lambda: Remembering(PersonWeights()),
    }
    started = time.perf_counter()
    res: dict[str, Any] = {"targets": targets, "quotes_one_org": one, "quotes_five_orgs": five}
    res["floor"] = floor_only(
        [int(t) for t in np.random.default_rng(seed).integers(1, 100, 4000)], seed
    )
    for name, make in mechs.items():
        r: dict[str, Any] = {}
        cps = [100, 1000, one]
        r["pairs_one_org"] = attack_rmse(pair_attack, make, targets, one, 1, cps, seed)
        r["triples_one_org"] = attack_rmse(triple_attack, make, targets // 2, one, 1, cps, seed + 1)
        r["pairs_five_orgs"] = attack_rmse(
            pair_attack, make, max(2, targets // 4), five, 5, [five], seed + 2
        )
        r["membership_500_triples"] = membership(make, 60, 500, seed + 3)
        r["utility_p95_pct"] = utility(make, [1_000, 10_000, 100_000], 600, seed + 4)
        res[name] = r
    res["seconds"] = round(time.perf_counter() - started, 1)
    return res


def latency(rows: int = 10_000_000, rounds: int = 15) -> dict[str, float]:
    """The quote's extra work in DuckDB at `rows` prospects, the variants interleaved in each
    round (the machine is shared): the weights' byte summed instead of today's cell-key byte,
    and the memory's sketch (a histogram of a bucket byte over the counted rows)."""
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    con.execute(
        "CREATE TABLE a AS SELECT i AS id, (hash(i) % 101)::UTINYINT AS dep, "
        "(hash(i * 7) % 251)::UTINYINT AS ck, (hash(i * 13) % 2)::UTINYINT AS w, "
        "(hash(i * 17) % 256)::UTINYINT AS bucket, (hash(i * 3) % 100)::UTINYINT AS age "
        "FROM range(?) t(i) ORDER BY dep",
        [rows],
    )
    queries: dict[str, str] = {}
    # broad: 40% of the base counted; narrow: 1.2% (3 departments, pruned by the sort order)
    for label, where in (("broad", "age < 40"), ("narrow", "age < 40 AND dep < 3")):
        sel = f"FROM a WHERE {where}"
        queries |= {
            f"{label}_today": f"SELECT dep, count(*), sum(ck) {sel} GROUP BY dep",  # noqa: S608
            f"{label}_weights": f"SELECT dep, count(*), sum(w) {sel} GROUP BY dep",  # noqa: S608
            f"{label}_weights+sketch_grouping_set": "SELECT GROUPING(dep, bucket), dep, bucket, "  # noqa: S608
            f"count(*), sum(w) {sel} GROUP BY GROUPING SETS ((dep), (bucket))",
            f"{label}_weights+sketch_dep_x_bucket": "SELECT dep, bucket, count(*), sum(w) "  # noqa: S608
            f"{sel} GROUP BY dep, bucket",
        }
    times: dict[str, list[float]] = {name: [] for name in queries}
    for r in range(rounds + 1):
        for name, sql in queries.items():
            t0 = time.perf_counter()
            con.execute(sql).fetchall()
            if r:  # the first round warms up
                times[name].append(time.perf_counter() - t0)
    out = {f"{name}_p50_ms": round(float(np.median(t)) * 1000, 2) for name, t in times.items()}
    ids = np.arange(3_000_000, dtype=np.int64)
    mem = Remembering(PersonWeights())
    for d in range(2000):
        mem.shown(ids[d * 1000 : d * 1000 + 900 + d % 50], organisation=0, day=0)
    sk = sketch(ids[:950])
    t0 = time.perf_counter()
    for _ in range(50):
        mem._near(950, sk, 0)
    out["memory_lookup_2000_remembered_ms"] = round((time.perf_counter() - t0) / 50 * 1000, 3)
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--selfcheck", action="store_true")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--targets", type=int, default=16)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    if args.latency:
        print(json.dumps(latency(), indent=2))
    if args.selfcheck or not args.latency:
        print(json.dumps(selfcheck(args.targets, args.seed), indent=2))


if __name__ == "__main__":
    main()
