"""The mechanisms the attack suite (bench/privacy.py) measures: what a customer is shown of the
count of one exact set of prospects.

A mechanism sees the set counted (its prospect ids), the organisation asking and the day of the
attack (0 = the first; the base is refreshed daily, so each day is a new snapshot). It may keep
state (what it answered, to whom). To measure another mechanism: write a class with `name`,
`shown` and `shown_cells` (subclass `PerSet` to get `shown_cells` from `shown`), and pass a
factory for it to `bench.privacy.run` (or add it to `MECHANISMS`); every family then runs
against it with the same sets, budgets and target groups as against `Today` (the product) and
`CellKey` (the mechanism before issue 13).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from datasets.snapshot import version_name
from kit.settings import PrivacySettings
from segmentation import privacy

Ids = npt.NDArray[np.int64]

K = 100  # RENTAL_MIN_SEGMENT_SIZE's default


class Mechanism(Protocol):
    name: str

    def shown(self, ids: Ids, *, organisation: int, day: int) -> int | None:
        """The count shown for this exact set; None: "fewer than k"."""
        ...

    def shown_cells(
        self, total: Ids, cells: Sequence[Ids], *, organisation: int, day: int
    ) -> tuple[int | None, list[int | None]]:
        """One quote with breakdowns: the total and the cells asked for (each a subset)."""
        ...


class PerSet:
    """A mechanism whose breakdown cells are shown like totals of the same sets."""

    name = "per-set"

    def shown(self, ids: Ids, *, organisation: int, day: int) -> int | None:
        raise NotImplementedError

    def shown_cells(
        self, total: Ids, cells: Sequence[Ids], *, organisation: int, day: int
    ) -> tuple[int | None, list[int | None]]:
        t = self.shown(total, organisation=organisation, day=day)
        if t is None:  # nothing of a segment under k is shown, not even its parts
            return None, [None] * len(cells)
        return t, [self.shown(c, organisation=organisation, day=day) for c in cells]


@dataclass
class Today(PerSet):
    """The product's mechanism (segmentation/privacy.py) as the quote path applies it: the
    sampled count of a set (privacy.PersonSample, keyed by the noise secret, the same on every
    snapshot), weighted and rounded by privacy.shown_count. Breakdown cells are the same sums
    over their own sets; the complementary suppression of protect_result is not modelled: it
    only hides cells near k, which the attacks avoid (a cell they use is several hundred), so
    leaving it out can only favour the attacker."""

    sample: privacy.PersonSample
    k: int = K
    name = "today"

    def shown(self, ids: Ids, *, organisation: int, day: int) -> int | None:
        return privacy.shown_count(len(ids), self.sample.sampled(ids), self.k, self.sample.rate)


def cell_key_step(value: float) -> int:
    """The baseline's public rounding step (rounded DOWN to it)."""
    return 10 if value < 1_000 else 100 if value < 100_000 else 1_000


@dataclass
class CellKey(PerSet):
    """The baseline: the cell-key method the product used before issue 13 (kept here only for
    the before/after table). Laplace noise seeded by an HMAC of (secret, snapshot, size, sum of
    the set's cell keys), clipped, rounded down to 10 / 100 / 1,000; a new draw each day (the
    snapshot is `v0001` on day 0, one version later each day)."""

    secret: bytes
    k: int = K
    first_version: int = 1
    name = "cell-key"

    def shown(self, ids: Ids, *, organisation: int, day: int) -> int | None:
        exact = len(ids)
        if exact < self.k:
            return None
        key_sum = int((np.asarray(ids, dtype=np.int64) % 251).sum())
        material = f"{version_name(self.first_version + day)}|{exact}|{key_sum}"
        digest = hmac.new(self.secret, material.encode(), hashlib.sha256).digest()
        u = (int.from_bytes(digest[:8], "big") + 0.5) / 2**64 - 0.5
        scale = max(6.0, exact * 0.002)
        draw = -scale * math.copysign(1.0, u) * math.log(1 - 2 * abs(u))
        noisy = exact + max(-5 * scale, min(5 * scale, draw))
        step = cell_key_step(noisy)
        shown = int(noisy // step) * step
        return shown if shown >= self.k else None


def bench_secret() -> bytes:
    """A fixed noise secret: runs are reproducible; the attacker never uses it."""
    return hashlib.sha256(b"bench.privacy noise secret").digest()


MechanismFactory = Callable[[], Mechanism]


def bench_sample(
    rate: float = PrivacySettings.model_fields["sample_rate"].default,
) -> privacy.PersonSample:
    return privacy.PersonSample.of(bench_secret(), rate)


MECHANISMS: dict[str, MechanismFactory] = {
    "today": lambda: Today(bench_sample()),
    "cell-key": lambda: CellKey(bench_secret()),
}
