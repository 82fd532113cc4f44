"""What a customer may see of a count: minimum size, per-person weights, rounding, suppression.

- Below the minimum segment size k nothing is shown ("fewer than k").
- Per-person sticky weights (docs/privacy-design.md): a secret sample of the base, rate r
  (`RENTAL_SAMPLE_RATE`, default 1/3.25), decided by a keyed hash of the prospect id alone, so
  it is the same on every snapshot. A sampled person weighs 1/r, the others 0; a count shows
  the sum of its people's weights. Any combination of counts that isolates a group T (pairs
  with or without `exclude`, triples, breakdown cells against totals, on any day, by any client
  key) yields the same sum over T every time: nothing averages away. What can be learnt of T is
  that sum, |T| give or take 1.5 sqrt(|T|) at the default rate; of one person, whether they are
  in the sample.
- The weighted sum is rounded to the nearest 10 below 100,000, 100 below 10M, 1,000 above; a
  count is hidden when the exact count is under k or the shown one is.
- Breakdown cells under k are suppressed, and more cells with them (smallest first) until at
  least two are hidden and the hidden cells add up to at least k, so that subtracting the shown
  cells from the total never isolates a small group. Regions and departments nest: the same rule
  holds inside every region, and a hidden region never has all its departments shown (see
  `suppress_nested`). An empty cell is hidden too; one the criteria reach (segmentation.reach)
  is protected as a small one (`Cell.possible`), so that the hidden cells never tell an empty
  cell from one holding a few people.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NDArray = np.ndarray[Any, Any]


def mix(z: NDArray) -> NDArray:
    """splitmix64 finaliser: a fixed, well-mixed bijection of 64-bit integers (uint64 in)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: NDArray = z ^ (z >> np.uint64(31))
    return out


# `mix` in DuckDB's SQL (64-bit products wrap: computed in 128 bits, masked).
SAMPLE_MACROS = (
    "CREATE MACRO mul64(a, b) AS "
    "CAST((CAST(a AS UHUGEINT) * CAST(b AS UHUGEINT)) & 18446744073709551615 AS UBIGINT)",
    "CREATE MACRO xorshift64(z, n) AS xor(z, z >> n)",
    "CREATE MACRO mix64(z) AS xorshift64(mul64(xorshift64(mul64(xorshift64(z, 30), "
    "13787848793156543929), 27), 10723151780598845931), 31)",
)


@dataclass(frozen=True)
class PersonSample:
    """Who is in the secret sample: a keyed 64-bit hash of the prospect id under the rate.

    The hash is two splitmix64 rounds keyed by two 64-bit keys derived from the noise secret by
    HMAC: vectorised in numpy, about 0.1 s for 10M ids where a cryptographic hash per id would
    take a minute. That is enough here because the attacker never sees an id nor a hash: at
    best it learns, one isolated person at a time, whether that person is sampled, which says
    nothing of the keys nor of anyone else."""

    keys: tuple[int, int]
    rate: float

    @classmethod
    def of(cls, secret: bytes, rate: float) -> PersonSample:
        if not 0 < rate <= 1:
            raise ValueError("the sample rate must be in (0, 1]")
        digest = hmac.new(secret, b"person sample", hashlib.sha256).digest()
        return cls((int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big")), rate)

    def flags(self, ids: NDArray) -> NDArray:
        """1 for a sampled prospect, 0 otherwise (uint8, in the order of `ids`)."""
        h = mix(np.asarray(ids, dtype=np.int64).astype(np.uint64) ^ np.uint64(self.keys[0]))
        h = mix(h ^ np.uint64(self.keys[1]))
        # The top 53 bits against rate * 2**53: exact for any rate, every id sampled at 1.
        return ((h >> np.uint64(11)) < np.uint64(int(self.rate * 2**53))).astype(np.uint8)

    def flags_sql(self, column: str) -> tuple[str, list[int]]:
        """`flags` as a DuckDB expression over an id column (of ours) and its parameters: the
        engine computes the flags while it copies the base, never storing them. Needs the
        macros of SAMPLE_MACROS on the connection."""
        expr = (
            f"CAST(mix64(xor(mix64(xor(CAST({column} AS UBIGINT), CAST(? AS UBIGINT))), "
            "CAST(? AS UBIGINT))) >> 11 < CAST(? AS UBIGINT) AS UTINYINT)"
        )
        return expr, [self.keys[0], self.keys[1], int(self.rate * 2**53)]

    def sampled(self, ids: NDArray) -> int:
        """How many of `ids` are sampled: what counts sum per set."""
        return int(self.flags(ids).sum(dtype=np.int64))


def step_for(value: float) -> int:
    """The shown precision: at most 0.05% of the value from 10,000 up."""
    if value < 100_000:
        return 10
    if value < 10_000_000:
        return 100
    return 1_000


def shown_count(exact: int, sampled: int, k: int, rate: float) -> int | None:
    """The count a customer sees of a set of `exact` prospects, `sampled` of them in the
    sample, or None for "fewer than k"."""
    if exact < k:
        return None
    weighted = sampled / rate
    step = step_for(weighted)
    shown = math.floor(weighted / step + 0.5) * step
    return shown if shown >= k else None


@dataclass(frozen=True)
class Cell:
    value: str
    label: str
    exact: int
    sampled: int = 0  # how many of its prospects are in the sample (PersonSample)
    # The reader cannot rule out that someone is in it (the criteria reach it: segmentation.
    # reach). Empty, it is protected as a small cell would be.
    possible: bool = False

    @property
    def may_hold(self) -> bool:
        """Whether someone may be in the cell, as far as the reader can tell."""
        return self.exact > 0 or self.possible


@dataclass(frozen=True)
class ShownCell:
    value: str
    label: str
    count: int | None  # None: suppressed

    @property
    def suppressed(self) -> bool:
        return self.count is None


def _complete(cells: Sequence[Cell], hidden: set[str], k: int) -> set[str]:
    """Hide more cells, smallest first, until the hidden cells that may hold anyone
    (`Cell.may_hold`) are none, or at least two that add up to at least k. An empty cell is
    hidden too (its emptiness is not shown). One the reader knows to be empty protects nothing
    and needs no protecting. One it cannot rule out (`Cell.possible`) is protected as a small
    one: were the others shown in full beside it, the total minus them would tell it from a
    small cell, whose complement is hidden, i.e. tell whether anyone is there."""
    hidden = set(hidden)
    exact = {c.value: c.exact for c in cells}
    maybe = {c.value for c in cells if c.may_hold}
    holding = [v for v in hidden if v in maybe]
    if not holding:
        return hidden
    rest = sorted(
        (c for c in cells if c.value not in hidden and c.exact > 0),
        key=lambda c: (c.exact, c.value),
    )
    count, total_hidden = len(holding), sum(exact[v] for v in holding)
    while rest and (count < 2 or total_hidden < k):
        c = rest.pop(0)
        hidden.add(c.value)
        count += 1
        total_hidden += c.exact
    return hidden


def visible(cells: Sequence[Cell], k: int, rate: float) -> dict[str, int | None]:
    """Each cell's shown count, None when hidden (see shown_count)."""
    return {c.value: shown_count(c.exact, c.sampled, k, rate) for c in cells}


def protect(cells: Sequence[Cell], k: int, rate: float) -> list[ShownCell]:
    """One flat dimension (age band, sex, socio-professional group...)."""
    counts = visible(cells, k, rate)
    hidden = _complete(cells, {v for v, n in counts.items() if n is None}, k)
    return [
        ShownCell(c.value, c.label, None if c.value in hidden else counts[c.value]) for c in cells
    ]


def suppress_nested(
    parents: Sequence[Cell],
    children: Sequence[Cell],
    parent_of: Mapping[str, str],
    k: int,
    hidden_parents: Iterable[str] = (),
    hidden_children: Iterable[str] = (),
) -> tuple[set[str], set[str]]:
    """Suppression for a two-level hierarchy (regions and their departments), to a fixed point:
    - among the parents, as for a flat dimension;
    - inside each parent, as for a flat dimension, so that a shown parent minus its shown
      children never isolates one hidden child or a group under k;
    - a hidden parent keeps enough hidden children that it cannot be rebuilt from them (a
      parent with a single child is the same set as that child: both hidden or both shown).
    """
    hp = set(hidden_parents) | {p.value for p in parents if p.exact < k}
    hc = set(hidden_children) | {c.value for c in children if c.exact < k}
    kids: dict[str, list[Cell]] = {p.value: [] for p in parents}
    for c in children:
        kids[parent_of[c.value]].append(c)
    while True:
        before = (len(hp), len(hc))
        hp = _complete(parents, hp, k)
        for p in parents:
            group = [c for c in kids[p.value] if c.may_hold]
            hidden_here = {c.value for c in group if c.value in hc}
            if p.value in hp and not hidden_here and group:
                # A hidden parent must not be the sum of shown children.
                hidden_here = {min(group, key=lambda c: (c.exact, c.value)).value}
            completed = _complete(group, hidden_here, k)
            if completed and (
                len(completed) < 2 or sum(c.exact for c in group if c.value in completed) < k
            ):
                hp.add(p.value)  # cannot protect inside it: hide the parent as well
            hc |= completed
        if (len(hp), len(hc)) == before:
            return hp, hc


@dataclass(frozen=True)
class Protected:
    """Everything a customer may see of one count."""

    total: int | None
    breakdowns: dict[str, list[ShownCell]]


def protect_result(
    total: int,
    total_sampled: int,
    breakdowns: Mapping[str, Mapping[str, int]],
    sampled: Mapping[str, Mapping[str, int]],
    cells_of: Mapping[str, Sequence[tuple[str, str]]],
    region_of: Mapping[str, str],
    k: int,
    rate: float,
    possible: Mapping[str, Collection[str]] | None = None,
) -> Protected:
    """Weights, rounding and suppression for a total and its breakdowns. Every possible cell of
    a dimension is listed (`cells_of`), empty ones included, so the listing itself tells
    nothing. Cells are sums of the same weights as the total: they agree with it. `possible`:
    per dimension, the cells the criteria reach (segmentation.reach.cells); an empty one of
    them is protected as a small one (`Cell.possible`), the others are known to be empty."""
    shown_total = shown_count(total, total_sampled, k, rate)
    reachable = possible or {}
    cells = {
        dim: [
            Cell(
                v,
                label,
                breakdowns[dim].get(v, 0),
                sampled[dim].get(v, 0),
                v in reachable.get(dim, ()),
            )
            for v, label in cells_of[dim]
        ]
        for dim in breakdowns
    }
    if shown_total is None:  # nothing of a segment under k is shown, not even its parts
        return Protected(
            None, {d: [ShownCell(c.value, c.label, None) for c in cs] for d, cs in cells.items()}
        )
    out: dict[str, list[ShownCell]] = {}
    for dim, dim_cells in cells.items():
        if dim not in ("region", "department"):
            out[dim] = protect(dim_cells, k, rate)
    if "department" in cells:
        regions = cells.get("region") or [
            Cell(
                r,
                r,
                sum(c.exact for c in cells["department"] if region_of[c.value] == r),
                sum(c.sampled for c in cells["department"] if region_of[c.value] == r),
                any(c.possible for c in cells["department"] if region_of[c.value] == r),
            )
            for r in sorted(set(region_of.values()))
        ]
        # Two dicts: region and department codes overlap ("11" is a region and a department).
        shown_regions = visible(regions, k, rate)
        shown_departments = visible(cells["department"], k, rate)
        hp, hc = suppress_nested(
            regions,
            cells["department"],
            region_of,
            k,
            hidden_parents=[v for v, n in shown_regions.items() if n is None],
            hidden_children=[v for v, n in shown_departments.items() if n is None],
        )
        for dim, hidden, counts in (
            ("region", hp, shown_regions),
            ("department", hc, shown_departments),
        ):
            if dim in cells:
                out[dim] = [
                    ShownCell(c.value, c.label, None if c.value in hidden else counts[c.value])
                    for c in cells[dim]
                ]
    elif "region" in cells:
        out["region"] = protect(cells["region"], k, rate)
    return Protected(shown_total, out)


def suppress_counts(
    counts: Mapping[str, int], k: int, zeros_shown: bool = False, possible: Iterable[str] = ()
) -> dict[str, int | None]:
    """Exact counts of one flat dimension (no weights: the ledger of an order, say), with the same
    rule as `protect`: cells under k hidden, more with them until the hidden cells cannot be
    worked out from the total. Empty cells are hidden too, unless `zeros_shown` (a time series:
    an empty hour singles no one out); an empty one of `possible` is protected as a small one
    (`Cell.possible`)."""
    maybe = set(possible)
    cells = [Cell(v, v, n, possible=v in maybe) for v, n in counts.items()]
    small = {c.value for c in cells if c.exact < k and (c.exact > 0 or not zeros_shown)}
    hidden = _complete(cells, small, k)
    return {c.value: None if c.value in hidden else c.exact for c in cells}


def suppress_possible(
    counts: Mapping[str, int], k: int, possible: Iterable[str]
) -> dict[str, int | None]:
    """`suppress_counts` where the reader cannot rule out that an empty cell holds someone
    (`possible`: a wave of a calendar the criteria reach, a region they cover): such an
    empty cell is hidden AND protected as a small one would be (`Cell.possible`)."""
    return suppress_counts(counts, k, possible=possible)


@dataclass(frozen=True)
class Node:
    """A count and the parts it splits into (the parts add up to it exactly). Used for the
    outcome of a send: recipients -> submitted -> delivered, failed -> reasons..."""

    name: str
    exact: int
    parts: tuple[Node, ...] = ()

    def walk(self) -> Iterable[Node]:
        yield self
        for p in self.parts:
            yield from p.walk()


def suppress_tree(root: Node, k: int, public: Iterable[str] = ()) -> set[str]:
    """The names to hide in a tree of counts, to a fixed point, with the rule of
    `suppress_nested` at every level:
    - a count under k is hidden; zero is not (an empty outcome singles no one out);
    - among the parts of a count, hidden parts are completed (`_complete`) so that the shown
      count minus its shown parts never isolates a part or a group under k;
    - a hidden count keeps at least one hidden part, so it cannot be rebuilt by addition;
    - a count whose hidden parts cannot be protected (a single one, or fewer than k together)
      is hidden as well.
    `public` counts are known to the reader anyway (the volume billed on the invoice), whatever
    their size: never hidden, never chosen to protect another, so the others are hidden
    instead. What a public count minus its other public parts gives away cannot be helped
    (the invoice states the volume billed): only its split is protected."""
    names = set(public)
    fixed = {n.name for n in root.walk() if n.name in names}
    hidden = {n.name for n in root.walk() if 0 < n.exact < k and n.name not in fixed}
    while True:
        before = len(hidden)
        for node in root.walk():
            if not node.parts:
                continue
            group = [Cell(p.name, p.name, p.exact) for p in node.parts if p.exact > 0]
            here = {c.value for c in group if c.value in hidden}
            if node.name in hidden and not here and group:
                choice = [c for c in group if c.value not in fixed] or group
                here = {min(choice, key=lambda c: (c.exact, c.value)).value}
            candidates = [c for c in group if c.value not in fixed or c.value in here]
            completed = _complete(candidates, here, k)
            exact = {c.value: c.exact for c in group}
            if completed and (len(completed) < 2 or sum(exact[v] for v in completed) < k):
                hidden.add(node.name)  # cannot be protected inside: hide the count as well
            hidden |= completed
        hidden -= fixed
        if len(hidden) == before:
            return hidden
