"""The eligible base pre-aggregated by department, region, exact age on the day and sex.

Most counts the segment builder asks touch only sex, an age range and places (departments or
regions), broken down by department, age band and sex. Their answer is a sum over a few tens of
thousands of cells: the eligible prospects grouped by (department, region, age, sex) with their
count and their sampled count (privacy.PersonSample's `w`), so such a count reads the cells in
numpy instead of scanning millions of rows. The cells give exactly the scan's numbers: the same
rows, the same age test (compiler.age_sql agrees with birth_bounds), the same band boundaries.

A cube is immutable and holds its day: the engine builds a new one (or a new one from the old
plus a delta) whenever eligibility or the day changes and swaps one reference, so a count never
reads one half made; a count on another day, or while the cube is being made, scans instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from datasets import reference
from segmentation.compiler import ELIGIBLE_BIT
from segmentation.criteria import Criteria, _Filters

# The criteria a cube answers; anything else set (postcodes, csp, radius...) needs the rows.
KEYS = frozenset({"sex", "age", "departments", "regions"})
DIMENSIONS = ("department", "region", "age", "sex")
AGE_OFFSET = 1 << 15  # a SMALLINT age plus this is never negative
BAND_FLOORS = np.array([lo for _, lo, _ in reference.AGE_BANDS])

ELIGIBLE = 1 << ELIGIBLE_BIT
Cells = tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]


def cells_sql(age: str, where: str, n: str = "count(*)", s: str = "sum(w)") -> str:
    """The query of the cells of the rows `where` selects (`age`: compiler.age_sql): each
    cell's prospects `n` and sampled prospects `s`."""
    return (
        "SELECT CAST(enum_code(department) AS INTEGER) AS department, "  # noqa: S608 (ours)
        f"CAST(region AS INTEGER) AS region, {age} AS age, CAST(sex AS INTEGER) AS sex, "
        f"CAST({n} AS BIGINT) AS n, CAST({s} AS BIGINT) AS s FROM attributes WHERE {where} "
        "GROUP BY ALL"
    )


def delta_sql(age: str, rows: str, recent: str) -> str:
    """The cells of a change of eligibility of `rows`, read before it is applied: -1 for each
    row now eligible (it is being excluded), +1 for each row not eligible that passes
    `recent` (opt-in and recent interaction: it is being freed; a row being excluded that is
    not eligible fails that test, or it would be), 0 otherwise."""
    sign = f"CASE WHEN profile >= {ELIGIBLE} THEN -1 WHEN {recent} THEN 1 ELSE 0 END"
    return cells_sql(age, rows, f"sum({sign})", f"sum(({sign}) * w)")


@dataclass(frozen=True)
class Cube:
    day: date
    department: np.ndarray
    region: np.ndarray
    age: np.ndarray
    sex: np.ndarray
    n: np.ndarray  # eligible prospects in the cell
    s: np.ndarray  # of which in the person sample

    @classmethod
    def of(cls, day: date, cells: dict[str, np.ndarray]) -> Cube | None:
        """The cube of a cells_sql or delta_sql result, as fetchnumpy gives it; None if a
        dimension is unknown for some prospect (a NULL groups and compares unlike a value:
        those counts need the rows)."""
        if any(np.ma.getmaskarray(cells[d]).any() for d in DIMENSIONS):
            return None
        return cls(day, **{c: np.asarray(v, dtype=np.int64) for c, v in cells.items()})

    def changed(self, delta: Cube | None) -> Cube | None:
        """This cube plus the cells of `delta` (delta_sql's signed counts, same day); None if
        `delta` is None (prospects with an unknown dimension)."""
        if delta is None:
            return None
        keys, inverse = np.unique(
            np.concatenate([self._keys(), delta._keys()]), return_inverse=True
        )
        n = np.bincount(inverse, weights=np.concatenate([self.n, delta.n])).astype(np.int64)
        s = np.bincount(inverse, weights=np.concatenate([self.s, delta.s])).astype(np.int64)
        keep = n > 0
        keys = keys[keep]
        return Cube(
            self.day,
            department=keys >> 32,
            region=keys >> 24 & 0xFF,
            age=(keys >> 2 & 0x3FFFFF) - AGE_OFFSET,
            sex=keys & 0b11,
            n=n[keep],
            s=s[keep],
        )

    def _keys(self) -> np.ndarray:
        """Each cell's dimensions in one integer (department codes < 4096, region < 256, sex
        < 4 and a SMALLINT age fit): what merging cells sorts on."""
        parts = (self.department << 32, self.region << 24, (self.age + AGE_OFFSET) << 2, self.sex)
        keys: np.ndarray = np.bitwise_or.reduce(parts)
        return keys

    def answer(
        self,
        criteria: Criteria,
        groups: list[str],
        codes: dict[str, dict[str, int]],
        labels: dict[str, list[str]],
    ) -> Cells | None:
        """Each of `groups`' cells (department, age_band, sex): (counts, sampled counts), as
        the engine's scan gives them; None when the criteria need more than the cube holds.
        `codes`: each dimension's value -> code; `labels`: each group's code -> value."""
        if not _answerable(criteria):
            return None
        m = self._mask(criteria, codes)
        if criteria.exclude is not None:
            m &= ~self._mask(criteria.exclude, codes)
        breakdowns: dict[str, dict[str, int]] = {}
        sampled: dict[str, dict[str, int]] = {}
        for g in groups:
            of = self._codes(g)[m]
            size = len(labels[g])
            counts = np.bincount(of, weights=self.n[m], minlength=size).astype(np.int64)
            weights = np.bincount(of, weights=self.s[m], minlength=size).astype(np.int64)
            present = np.flatnonzero(counts).tolist()
            breakdowns[g] = {labels[g][i]: int(counts[i]) for i in present}
            sampled[g] = {labels[g][i]: int(weights[i]) for i in present}
        return breakdowns, sampled

    def _codes(self, group: str) -> np.ndarray:
        if group == "age_band":  # 0 under the first band, then 1.. (compiler.AGE_BAND_LABELS)
            return np.searchsorted(BAND_FLOORS, self.age, side="right")
        column: np.ndarray = getattr(self, group)
        return column

    def _mask(self, f: _Filters, codes: dict[str, dict[str, int]]) -> np.ndarray:
        """The cells whose prospects match all of `f`'s keys (only KEYS are set)."""
        m = np.ones(len(self.n), dtype=bool)
        lists = (("sex", "sex"), ("departments", "department"), ("regions", "region"))
        for key, column in lists:
            values: list[str] | None = getattr(f, key)
            if values is not None:
                wanted = [codes[column][v] for v in values if v in codes[column]]
                m &= np.isin(getattr(self, column), wanted)
        if f.age is not None:
            m &= (self.age >= f.age.min) & (self.age <= f.age.max)
        return m


def _answerable(criteria: Criteria) -> bool:
    def only_keys(f: _Filters, skip: frozenset[str]) -> bool:
        return all(getattr(f, k) is None for k in type(f).model_fields if k not in skip)

    exclude = criteria.exclude
    return only_keys(criteria, KEYS | {"exclude"}) and (exclude is None or only_keys(exclude, KEYS))
