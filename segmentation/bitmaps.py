"""Counts from bitsets over the engine's rows: a broad count without touching a row.

One bitset per attribute value, over the engine's row order (bit r of word r // 64 is row r),
as numpy uint64 words: the profile's bits (sex, housing, dwelling, children), each
socio-professional group, income band and interest, the secret sample's flags, the age as
bit-planes (a bit-sliced index: a range is two comparisons, a few word operations per plane)
and the day's age bands, and eligibility (recent consent and interaction, minus the excluded
rows, kept as a bitset and changed by delta). Rows are stored by department, so a department is
a row range: a department or region criterion is a mask of ranges, and the breakdown by
department is the popcounts of each range. A criterion is a few AND/OR/ANDNOT of those; a count
is `np.bitwise_count` of the result, and its sampled count that of the result AND the sample:
the numbers the scan gives, since every bitset is read from the same rows with the compiler's
semantics (tests/segmentation/test_engine_bitmaps.py checks them cell by cell).

What it cannot say (postcodes, communes, a radius; a column with unknown values; rows not
stored by department) it leaves to the scan: `Bitmaps.answer` returns None.

At 10M rows a bitset is 1.25 MB and one word operation over it about 0.05 ms; what they all
cost is `Bitmaps.nbytes`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
from numpy.typing import NDArray

from datasets import reference
from segmentation.compiler import PROFILE_BITS
from segmentation.criteria import Criteria, _Filters

Words = NDArray[np.uint64]
Cells = tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]

AGE_PLANES = 7  # ages are clipped to 0..127: every criterion's range (18..105) reads the same
BAND_FLOORS = np.array([lo for _, lo, _ in reference.AGE_BANDS])
# The criteria keys a bitset answers (with the column each one reads); postcodes, communes and
# radius need the rows.
KEY_COLUMNS = {
    "sex": "profile", "housing": "profile", "dwelling": "profile", "children": "profile",
    "csp": "csp", "income": "income", "interests": "interests", "age": "birth_date",
    "departments": "department", "regions": "region",
}  # fmt: skip
GROUP_COLUMNS = {"department": "department", "sex": "profile", "age_band": "birth_date",
                 "csp": "csp"}  # fmt: skip
FULL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def words_for(rows: int) -> int:
    """Words of a bitset of `rows`: always one more than full ones, so that the position of
    the end of the rows has a word (range counts read it)."""
    return rows // 64 + 1


def pack(flags: np.ndarray, words: int) -> Words:
    """The bitset of a boolean per row (any nonzero value is true)."""
    packed = np.packbits(flags, bitorder="little")
    out = np.zeros(words * 8, dtype=np.uint8)
    out[: len(packed)] = packed
    return out.view("<u8").astype(np.uint64, copy=False)


def of_rows(rows: NDArray[np.int64], words: int) -> Words:
    """The bitset of these row numbers."""
    out = np.zeros(words, dtype=np.uint64)
    np.bitwise_or.at(out, rows >> 6, np.left_shift(np.uint64(1), (rows & 63).astype(np.uint64)))
    return out


def count(bits: Words) -> int:
    return int(np.bitwise_count(bits).sum(dtype=np.int64))


def count_and(a: Words, b: Words, buffer: Words) -> int:
    """count(a & b), written into `buffer` (no allocation of a bitset per cell)."""
    return count(np.bitwise_and(a, b, out=buffer))


def _span(out: Words, start: int, end: int) -> None:
    """Set bits [start, end) of `out`."""
    if start >= end:
        return
    first, last = start >> 6, end >> 6
    low = (1 << (start & 63)) - 1  # the bits below start in its word
    high = (1 << (end & 63)) - 1  # the bits below end in its word
    if first == last:
        out[first] |= np.uint64(high & ~low)
        return
    out[first] |= np.uint64(~low & 0xFFFF_FFFF_FFFF_FFFF)
    out[first + 1 : last] = FULL
    if high:
        out[last] |= np.uint64(high)


@dataclass(frozen=True)
class Columns:
    """What a snapshot's rows hold, as bitsets: made once per engine (rows never change)."""

    rows: int
    everyone: Words  # bits [0, rows)
    profile: dict[int, Words]  # profile bit -> rows where it is set
    coded: dict[str, list[Words]]  # csp, income: code -> rows
    interests: list[Words]  # interest bit -> rows
    sample: list[Words]  # bit-planes of the sample byte `w`
    starts: NDArray[np.int64]  # department code -> its first row (empty: start == end)
    ends: NDArray[np.int64]
    region_departments: dict[int, list[int]]  # region code -> department codes
    usable: frozenset[str]  # the columns without unknown values (and departments in ranges)

    @property
    def words(self) -> int:
        return len(self.everyone)

    @classmethod
    def of(cls, found: dict[str, np.ndarray], interests: int, departments: int) -> Columns:
        """From one fetch of the rows in row order: department and region codes, profile,
        csp, income, interests, w (NULLs masked) and `birth_null` (no birth date)."""
        rows = len(found["profile"])
        words = words_for(rows)
        usable = {c for c, v in found.items() if not np.ma.getmaskarray(v).any()}
        if not np.ma.getdata(found["birth_null"]).any():  # ages and bands hold every row
            usable.add("birth_date")
        col = {c: np.ma.getdata(v) for c, v in found.items()}
        starts, ends, regions = _ranges(col["department"], col["region"], departments, usable)
        profile, csp, income, mask, w = (
            col[c] for c in ("profile", "csp", "income", "interests", "w")
        )
        return cls(
            rows=rows,
            everyone=pack(np.ones(rows, dtype=bool), words),
            # packbits takes any nonzero value for a one: a bit's mask needs no comparison
            profile={b: pack(profile & (1 << b), words) for b in range(len(PROFILE_BITS))},
            coded={
                "csp": _per_code(csp, words, "csp" in usable),
                "income": _per_code(income, words, "income" in usable),
            },  # fmt: skip
            interests=[pack(mask & (1 << b), words) for b in range(interests)],
            sample=[pack(w & (1 << b), words) for b in range(int(w.max(initial=0)).bit_length())],
            starts=starts,
            ends=ends,
            region_departments=regions,
            usable=frozenset(usable),
        )

    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._sets())

    def count_sets(self) -> int:
        return len(self._sets())

    def _sets(self) -> list[Words]:
        sets = [self.everyone, *self.profile.values(), *self.interests, *self.sample]
        return sets + [b for codes in self.coded.values() for b in codes]


def _per_code(codes: np.ndarray, words: int, usable: bool) -> list[Words]:
    """A bitset per code of a coded column; none for a column with unknown values (what lies
    under its NULLs is not a code)."""
    if not usable:
        return []
    return [pack(codes == c, words) for c in range(int(codes.max(initial=0)) + 1)]


def _ranges(
    department: np.ndarray, region: np.ndarray, departments: int, usable: set[str]
) -> tuple[NDArray[np.int64], NDArray[np.int64], dict[int, list[int]]]:
    """Each department's row range and each region's departments; `usable` loses department
    when a department's rows are not contiguous, region when a department spans regions."""
    starts = np.zeros(departments, dtype=np.int64)
    ends = np.zeros(departments, dtype=np.int64)
    if "department" not in usable or len(department) == 0:
        usable.discard("region")
        return starts, ends, {}
    dep = department
    edges = np.flatnonzero(dep[1:] != dep[:-1]) + 1
    first = np.concatenate([[0], edges])
    last = np.concatenate([edges, [len(dep)]])
    codes = dep[first].astype(np.int64)
    if len(np.unique(codes)) != len(codes):  # a department in two places: not a range
        usable.discard("department")
        usable.discard("region")
        return starts, ends, {}
    starts[codes], ends[codes] = first, last
    regions: dict[int, list[int]] = {}
    if "region" in usable:
        reg = region
        if not all((reg[a:b] == reg[a]).all() for a, b in zip(first, last, strict=True)):
            usable.discard("region")
        for code, a in zip(codes.tolist(), first.tolist(), strict=True):
            regions.setdefault(int(reg[a]), []).append(code)
    return starts, ends, regions


@dataclass(frozen=True)
class Bitmaps:
    """The rows' bitsets plus those of one day and one excluded set: immutable, swapped whole
    by the engine like its cube."""

    columns: Columns
    day: date
    ages: list[Words]  # bit-planes of the age on `day`, clipped to 0..127
    bands: list[Words]  # age band code (compiler.AGE_BAND_LABELS) -> rows; 0 is the rest
    recent: Words  # SMS opt-in and interaction within the inactivity limit
    excluded: Words  # opted out, over the pressure cap, reserved
    eligible: Words  # recent and not excluded: the profile's eligibility bit

    @classmethod
    def of(
        cls,
        columns: Columns,
        day: date,
        age: np.ndarray,
        recent: NDArray[np.bool_],
        excluded_rows: NDArray[np.int64],
    ) -> Bitmaps:
        """The day's bitsets from each row's age on `day` (compiler.age_sql) and recency."""
        words = columns.words
        clipped = np.clip(np.ma.getdata(age), 0, (1 << AGE_PLANES) - 1).astype(np.int16)
        fresh = pack(np.ma.getdata(recent).astype(bool) & ~np.ma.getmaskarray(recent), words)
        excluded = of_rows(excluded_rows, words)
        made = cls(
            columns=columns,
            day=day,
            ages=[pack(clipped & (1 << b), words) for b in range(AGE_PLANES)],
            bands=[],
            recent=fresh,
            excluded=excluded,
            eligible=fresh & ~excluded,
        )
        # A band is the rows of at least its floor and not of the next one (code 0: the rest).
        floors = [made._at_least(int(lo)) for lo in BAND_FLOORS]
        bands = [columns.everyone ^ floors[0]]
        bands += [
            a ^ b for a, b in zip(floors, [*floors[1:], np.zeros_like(floors[0])], strict=True)
        ]
        return replace(made, bands=bands)

    def changed(self, added: NDArray[np.int64], freed: NDArray[np.int64]) -> Bitmaps:
        """These bitsets with rows `added` to the excluded set and rows `freed` from it."""
        excluded = self.excluded.copy()
        if len(added):
            excluded |= of_rows(added, self.columns.words)
        if len(freed):
            excluded &= ~of_rows(freed, self.columns.words)
        return replace(self, excluded=excluded, eligible=self.recent & ~excluded)

    def nbytes(self) -> int:
        """The memory of every bitset held (the rows' part is shared with the next day's)."""
        return self.columns.nbytes() + sum(b.nbytes for b in self._own())

    def count_sets(self) -> int:
        return self.columns.count_sets() + len(self._own())

    def _own(self) -> list[Words]:
        return [*self.ages, *self.bands, self.recent, self.excluded, self.eligible]

    def answers(self, criteria: Criteria, groups: list[str]) -> bool:
        """Whether every criterion and breakdown is one the bitsets hold."""
        usable = self.columns.usable
        if any(GROUP_COLUMNS.get(g) not in usable for g in groups):
            return False
        for f in (criteria, criteria.exclude):
            if f is None:
                continue
            for key in type(f).model_fields:
                if key != "exclude" and getattr(f, key) is not None:
                    if KEY_COLUMNS.get(key) not in usable:
                        return False
        return True

    def answer(
        self, criteria: Criteria, groups: list[str], codes: Codes, with_sample: bool = True
    ) -> Cells | None:
        """Each of `groups`' cells (department, age_band, sex, csp): (counts, sampled counts),
        as the engine's scan gives them; None when the bitsets cannot say. `with_sample=False`
        leaves the sample out (every sampled count 0), as Engine.count's baseline does."""
        if not self.answers(criteria, groups):
            return None
        m = self._matching(criteria, codes, eligible=True)
        if criteria.exclude is not None:
            m &= ~self._matching(criteria.exclude, codes, eligible=False)
        breakdowns: dict[str, dict[str, int]] = {}
        sampled: dict[str, dict[str, int]] = {}
        planes = [m & plane for plane in self.columns.sample] if with_sample else []
        for g in groups:
            n = self._cells(g, m)
            s = sum((self._cells(g, p) << k for k, p in enumerate(planes)), np.zeros_like(n))
            present = np.flatnonzero(n).tolist()
            labels = codes.labels[g]
            breakdowns[g] = {labels[i]: int(n[i]) for i in present}
            sampled[g] = {labels[i]: int(s[i]) for i in present}
        return breakdowns, sampled

    def _cells(self, group: str, m: Words) -> NDArray[np.int64]:
        """How many rows of `m` each value of `group` holds, by code."""
        if group == "department":
            return _range_counts(m, self.columns.starts, self.columns.ends)
        if group == "sex":
            male = count_and(m, self.columns.profile[_bit("sex")], np.empty_like(m))
            total = count(m)
            return np.array([total - male, male], dtype=np.int64)
        sets = self.bands[1:] if group == "age_band" else self.columns.coded[group]
        buffer = np.empty_like(m)
        out = np.array([count_and(m, b, buffer) for b in sets], dtype=np.int64)
        if group == "age_band":  # code 0: under the first band, what the others leave
            out = np.concatenate([[count(m) - int(out.sum())], out])
        return out

    def _matching(self, f: _Filters, codes: Codes, eligible: bool) -> Words:
        """The rows matching all of `f`'s keys (and eligible, if asked): compiler semantics."""
        cols = self.columns
        m = self.eligible.copy() if eligible else cols.everyone.copy()
        for name, bit in ((n, _bit(n)) for n in PROFILE_BITS):
            value = getattr(f, name)
            if value is None:
                continue
            wanted = set(value) if isinstance(value, list) else {value}
            on, off = PROFILE_BITS[name][1] in wanted, PROFILE_BITS[name][0] in wanted
            if on and not off:
                m &= cols.profile[bit]
            elif off and not on:
                m &= ~cols.profile[bit]
        for key, column in (("csp", "csp"), ("income", "income")):
            values: list[str] | None = getattr(f, key)
            if values is not None:
                m &= self._any(cols.coded[column], [codes.of[column].get(v) for v in values])
        if f.interests is not None:
            m &= self._any(cols.interests, [codes.interests.get(i) for i in f.interests])
        places = self._places(f, codes)
        if places is not None:
            m &= places
        if f.age is not None:
            m &= self._at_least(f.age.min) ^ self._at_least(f.age.max + 1)
        return m

    def _any(self, sets: list[Words], wanted: list[int | None]) -> Words:
        out = np.zeros(self.columns.words, dtype=np.uint64)
        for code in wanted:
            if code is not None and code < len(sets):
                out |= sets[code]
        return out

    def _places(self, f: _Filters, codes: Codes) -> Words | None:
        """The rows of `f`'s departments and regions (both: those in both), None if neither."""
        if f.departments is None and f.regions is None:
            return None
        chosen = set(range(len(self.columns.starts)))
        if f.departments is not None:
            chosen &= {
                codes.of["department"][d] for d in f.departments if d in codes.of["department"]
            }
        if f.regions is not None:
            regions = {codes.of["region"].get(r) for r in f.regions}
            chosen &= {
                d
                for r, deps in self.columns.region_departments.items()
                if r in regions
                for d in deps
            }
        out = np.zeros(self.columns.words, dtype=np.uint64)
        for d in chosen:
            _span(out, int(self.columns.starts[d]), int(self.columns.ends[d]))
        return out

    def _at_least(self, age: int) -> Words:
        """The rows of at least `age` years (on the day), from the age's bit-planes."""
        if age <= 0:
            return self.columns.everyone.copy()
        if age >= 1 << AGE_PLANES:
            return np.zeros(self.columns.words, dtype=np.uint64)
        greater = np.zeros(self.columns.words, dtype=np.uint64)
        equal = self.columns.everyone.copy()
        ones = np.empty_like(equal)
        for b in reversed(range(AGE_PLANES)):  # in place: no bitset made per step
            np.bitwise_and(equal, self.ages[b], out=ones)
            if age >> b & 1:
                equal, ones = ones, equal
            else:  # equal so far and this bit set where age's is clear: greater
                greater |= ones
                equal ^= ones
        greater |= equal
        return greater


@dataclass(frozen=True)
class Codes:
    """The engine's vocabulary as the bitsets read it: value -> code per column, an interest's
    bit, and each breakdown's code -> label."""

    of: dict[str, dict[str, int]]  # department, region, csp, income
    interests: dict[str, int]
    labels: dict[str, list[str]]  # department, age_band, sex, csp


def _bit(name: str) -> int:
    return list(PROFILE_BITS).index(name)


def _range_counts(
    m: Words, starts: NDArray[np.int64], ends: NDArray[np.int64]
) -> NDArray[np.int64]:
    """How many bits of `m` each row range [start, end) holds: per-word popcounts summed
    between the ranges' words, plus the partial words at their edges."""
    points = np.unique(np.concatenate([starts, ends, [0]]))
    word, offset = points >> 6, points & 63
    per_word = np.bitwise_count(m)
    firsts = np.unique(word)
    sums = np.add.reduceat(per_word, firsts, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(sums)[:-1]])  # bits in the words before each
    whole = before[np.searchsorted(firsts, word)]
    low = np.left_shift(np.uint64(1), offset.astype(np.uint64)) - np.uint64(1)
    upto = whole + np.bitwise_count(m[word] & low).astype(np.int64)  # bits before each point
    counts: NDArray[np.int64] = (
        upto[np.searchsorted(points, ends)] - upto[np.searchsorted(points, starts)]
    )
    return counts
