"""What a customer may see of a count: minimum size, cell-key noise, rounding, suppression.

- Below the minimum segment size k nothing is shown ("fewer than k").
- Noise follows the cell-key method: the draw is an HMAC of (secret, snapshot, the size of the
  set of prospects and the sum of their cell keys, a random byte per person), so it depends on
  WHO is counted, not on how the question was worded. The same set always gets the same answer,
  whether asked as a total or seen as a breakdown cell, under any rewording (a radius of 60 or
  60.5 km covering the same communes, redundant keys...); repeating or rephrasing a question
  averages nothing away, while two sets that differ by one person get independent draws.
- The noisy value is rounded DOWN to a step that grows with the count; a result under k after
  noise and rounding is not shown either.
- Breakdown cells under k are suppressed, and more cells with them (smallest first) until at
  least two are hidden and the hidden cells add up to at least k, so that subtracting the shown
  cells from the total never isolates a small group. Regions and departments nest: the same rule
  holds inside every region, and a hidden region never has all its departments shown (see
  `suppress_nested`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

NOISE_FLOOR = 6.0  # Laplace scale for small counts
NOISE_RELATIVE = 0.002  # ... growing with the count
NOISE_BOUND = 5.0  # in scales: the draw is clipped so a shown count is never far off


def step_for(value: float) -> int:
    if value < 1_000:
        return 10
    if value < 100_000:
        return 100
    return 1_000


def cell_key(snapshot: str, exact: int, fingerprint: int) -> str:
    """The noise material of a set of prospects: its size and the sum of its cell keys."""
    return f"{snapshot}|{exact}|{fingerprint}"


def _uniform(secret: bytes, material: str) -> float:
    digest = hmac.new(secret, material.encode(), hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64


def noise(secret: bytes, material: str, exact: int) -> float:
    scale = max(NOISE_FLOOR, exact * NOISE_RELATIVE)
    u = _uniform(secret, material) - 0.5
    draw = -scale * math.copysign(1.0, u) * math.log(1 - 2 * abs(u))
    return max(-NOISE_BOUND * scale, min(NOISE_BOUND * scale, draw))


def shown_count(exact: int, k: int, secret: bytes, material: str) -> int | None:
    """The count a customer sees, or None for "fewer than k"."""
    if exact < k:
        return None
    noisy = exact + noise(secret, material, exact)
    step = step_for(noisy)
    shown = int(noisy // step) * step
    return shown if shown >= k else None


@dataclass(frozen=True)
class Cell:
    value: str
    label: str
    exact: int
    material: str = ""  # the cell key (see cell_key)


@dataclass(frozen=True)
class ShownCell:
    value: str
    label: str
    count: int | None  # None: suppressed

    @property
    def suppressed(self) -> bool:
        return self.count is None


def _complete(cells: Sequence[Cell], hidden: set[str], k: int) -> set[str]:
    """Hide more cells, smallest first, until the hidden cells that hold anyone are none, or at
    least two that add up to at least k. Empty cells are hidden too (their emptiness is not
    shown) but protect nothing and need no protecting: subtracting them isolates no one."""
    hidden = set(hidden)
    exact = {c.value: c.exact for c in cells}
    holding = [v for v in hidden if exact.get(v, 0) > 0]
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


def visible(cells: Sequence[Cell], k: int, secret: bytes) -> dict[str, int | None]:
    """Each cell's noisy count, None when under k after noise and rounding."""
    return {c.value: shown_count(c.exact, k, secret, c.material) for c in cells}


def protect(cells: Sequence[Cell], k: int, secret: bytes) -> list[ShownCell]:
    """One flat dimension (age band, sex, socio-professional group...)."""
    counts = visible(cells, k, secret)
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
            group = [c for c in kids[p.value] if c.exact > 0]
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
    total_key: int,
    breakdowns: Mapping[str, Mapping[str, int]],
    keys: Mapping[str, Mapping[str, int]],
    cells_of: Mapping[str, Sequence[tuple[str, str]]],
    region_of: Mapping[str, str],
    snapshot: str,
    k: int,
    secret: bytes,
) -> Protected:
    """Noise, rounding and suppression for a total and its breakdowns. Every possible cell of a
    dimension is listed (`cells_of`), empty ones included, so the listing itself tells nothing."""
    shown_total = shown_count(total, k, secret, cell_key(snapshot, total, total_key))
    cells = {
        dim: [
            Cell(
                v,
                label,
                breakdowns[dim].get(v, 0),
                cell_key(snapshot, breakdowns[dim].get(v, 0), keys[dim].get(v, 0)),
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
            out[dim] = protect(dim_cells, k, secret)
    if "department" in cells:
        regions = cells.get("region") or [
            Cell(r, r, sum(c.exact for c in cells["department"] if region_of[c.value] == r))
            for r in sorted(set(region_of.values()))
        ]
        # Two dicts: region and department codes overlap ("11" is a region and a department).
        shown_regions = visible(regions, k, secret)
        shown_departments = visible(cells["department"], k, secret)
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
        out["region"] = protect(cells["region"], k, secret)
    return Protected(shown_total, out)


def suppress_counts(
    counts: Mapping[str, int], k: int, zeros_shown: bool = False
) -> dict[str, int | None]:
    """Exact counts of one flat dimension (no noise: the ledger of an order, say), with the same
    rule as `protect`: cells under k hidden, more with them until the hidden cells cannot be
    worked out from the total. Empty cells are hidden too, unless `zeros_shown` (a time series:
    an empty hour singles no one out)."""
    cells = [Cell(v, v, n) for v, n in counts.items()]
    small = {c.value for c in cells if c.exact < k and (c.exact > 0 or not zeros_shown)}
    hidden = _complete(cells, small, k)
    return {c.value: None if c.value in hidden else c.exact for c in cells}


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
