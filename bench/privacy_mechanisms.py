"""The mechanisms the attack suite (bench/privacy.py) measures: what a customer is shown of the
count of one exact set of prospects.

A mechanism sees the set counted (its prospect ids), the organisation asking and the day of the
attack (0 = the first; the base is refreshed daily, so each day is a new snapshot). It may keep
state (what it answered, to whom). To measure another mechanism: write a class with `name`,
`shown` and `shown_cells` (subclass `PerSet` to get `shown_cells` from `shown`), and pass a
factory for it to `bench.privacy.run` (or add it to `MECHANISMS`); every family then runs
against it with the same sets, budgets and target groups as against `Today`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from datasets.snapshot import version_name
from segmentation import privacy
from segmentation.engine import cell_key_sum

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
    """Today's mechanism (segmentation/privacy.py) as the quote path applies it: the cell-key
    material of a set is (snapshot, size, sum of its cell keys) as segmentation/engine.py counts
    them; the snapshot is `v0001` on day 0 and one version later each day (the daily refresh).

    Breakdown cells get the same noise as totals of the same sets; the complementary
    suppression of protect_result is not modelled: it only hides cells near k, which the
    attacks avoid (a cell they use is several hundred), so leaving it out can only favour the
    attacker."""

    secret: bytes
    k: int = K
    first_version: int = 1
    name = "today"

    def snapshot(self, day: int) -> str:
        return version_name(self.first_version + day)

    def shown(self, ids: Ids, *, organisation: int, day: int) -> int | None:
        exact = len(ids)
        material = privacy.cell_key(self.snapshot(day), exact, cell_key_sum(ids))
        return privacy.shown_count(exact, self.k, self.secret, material)


def bench_secret() -> bytes:
    """A fixed noise secret: runs are reproducible; the attacker never uses it."""
    return hashlib.sha256(b"bench.privacy noise secret").digest()


MechanismFactory = Callable[[], Mechanism]

MECHANISMS: dict[str, MechanismFactory] = {
    "today": lambda: Today(bench_secret()),
}
