"""What a customer may see of a count: minimum size, deterministic noise, rounding, suppression.

- Below the minimum segment size k nothing is shown ("fewer than k").
- Noise is Laplace-shaped, drawn from an HMAC of (secret, canonical criteria, snapshot, cell): the
  same question on the same snapshot gets the same answer, so repeating it averages nothing away,
  while two questions that differ by one person get independent draws.
- The noisy value is rounded DOWN to a step that grows with the count; a result under k after
  noise and rounding is not shown either.
- Breakdown cells under k are suppressed, and more cells are suppressed with them (smallest first)
  until at least two are hidden and the hidden cells add up to at least k, so that subtracting
  the shown cells from the total never isolates a small group.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Sequence
from dataclasses import dataclass

NOISE_FLOOR = 4.0  # Laplace scale for small counts
NOISE_RELATIVE = 0.002  # ... growing with the count
NOISE_BOUND = 5.0  # in scales: the draw is clipped so a shown count is never far off


def step_for(value: float) -> int:
    if value < 1_000:
        return 10
    if value < 100_000:
        return 100
    return 1_000


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


@dataclass(frozen=True)
class ShownCell:
    value: str
    label: str
    count: int | None  # None: suppressed

    @property
    def suppressed(self) -> bool:
        return self.count is None


def suppressed_values(cells: Sequence[Cell], k: int) -> set[str]:
    """Primary suppression (< k) then complementary suppression, smallest cells first."""
    hidden = {c.value for c in cells if c.exact < k}
    if not hidden:
        return hidden
    rest = sorted((c for c in cells if c.value not in hidden), key=lambda c: (c.exact, c.value))
    total_hidden = sum(c.exact for c in cells if c.value in hidden)
    while rest and (len(hidden) < 2 or total_hidden < k):
        c = rest.pop(0)
        hidden.add(c.value)
        total_hidden += c.exact
    return hidden


def protect(cells: Sequence[Cell], k: int, secret: bytes, material: str) -> list[ShownCell]:
    hidden = suppressed_values(cells, k)
    out = []
    for c in cells:
        shown = (
            None if c.value in hidden else shown_count(c.exact, k, secret, f"{material}|{c.value}")
        )
        out.append(ShownCell(c.value, c.label, shown))
    # A cell hidden by rounding (noisy value under k) must not leave a lone hidden cell behind.
    late = {c.value for c in out if c.count is None} - hidden
    if late:
        again = suppressed_values(
            [Cell(c.value, c.label, 0 if c.value in late else c.exact) for c in cells], k
        )
        out = [ShownCell(c.value, c.label, None if c.value in again else c.count) for c in out]
    return out
