"""Criteria to DuckDB SQL: a WHERE clause with `?` placeholders and its parameter list.

Nothing from the request is ever formatted into the SQL text: column names come from this module,
values are bound. Age is derived at query time from the birth date and the reference day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from datasets import reference
from segmentation.criteria import Criteria, _Filters

EARTH_KM = 6371.0088
EXCLUSION_TABLE = "exclusion_members"  # file_id, prospect_id: kept by the engine
SHORT_LIST = 8  # longer lists of departments, communes or postcodes are semi-joined
LIST_COLUMNS = {
    "sex": "sex", "csp": "csp", "regions": "region", "departments": "department",
    "postcodes": "postcode", "communes": "commune", "housing": "housing",
    "dwelling": "dwelling", "income": "income",
}  # fmt: skip


# The profile: one small integer per prospect packing the two-valued attributes and the
# eligibility flag. Any combination of conditions on them is one set of allowed profile values,
# tested with one predicate instead of one per attribute. Bits from least to most significant;
# eligibility and sex are the high bits, so "eligible" and "eligible women" are contiguous
# ranges of values, which DuckDB pushes into the scan (BETWEEN), cheaper than a bitmask test.
PROFILE_BITS = {"children": (False, True), "dwelling": ("house", "flat"),
                "housing": ("owner", "tenant"), "sex": ("F", "M")}  # fmt: skip
ELIGIBLE_BIT = len(PROFILE_BITS)
PROFILE_VALUES = 1 << (ELIGIBLE_BIT + 1)


def profile_sql(columns: dict[str, str], eligible: str) -> str:
    """The SQL expression computing the profile from coded columns and an eligibility test."""
    parts = [
        f"(CAST({columns[name]} AS INTEGER) << {bit})" for bit, name in enumerate(PROFILE_BITS)
    ]
    parts.append(f"(CASE WHEN {eligible} THEN {1 << ELIGIBLE_BIT} ELSE 0 END)")
    return " | ".join(parts)


@dataclass(frozen=True)
class Layout:
    """How the engine stores what criteria test: the bit of each interest, and the small
    categorical columns kept as integer codes (value -> code), tested with one bitmask."""

    interest_bits: list[str]
    codes: dict[str, dict[str, int]] = field(default_factory=dict)
    enum_types: dict[str, str] = field(default_factory=dict)  # column -> DuckDB ENUM type


@dataclass
class Sql:
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def where(self) -> str:
        return " AND ".join(f"({c})" for c in self.clauses) if self.clauses else "TRUE"


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def birth_bounds(today: date, min_age: int, max_age: int) -> tuple[date, date]:
    """Born on or before the first date and after the second: min_age <= age <= max_age."""
    return years_before(today, min_age), years_before(today, max_age + 1)


def age_sql(today: date) -> str:
    """The age in whole years of `birth_date` on `today` (a SMALLINT): the largest k such that
    birth_date <= years_before(today, k), so that min <= age <= max holds exactly when
    birth_bounds' test does, leap days included (a 29 February `today` makes years_before fall
    on the 28th of common years: the 28th's birthdays count, the 1 March's do not, as
    month * 100 + day <= 229 says). The day's two numbers are written into the text, not
    bound: they are integers of ours, and bound ones cost this grouping twice the time."""
    year, day = int(today.year), int(today.month * 100 + today.day)
    return (
        f"CAST({year} - year(birth_date) - CAST(month(birth_date) * 100 + day(birth_date) > "
        f"{day} AS INTEGER) AS SMALLINT)"
    )


def _radius(sql: Sql, commune: str, km: float) -> None:
    """Prospects whose commune centre lies within `km` of the given commune's centre: a
    bounding box first (rows are stored by place, so it prunes), then the great-circle test."""
    com = reference.communes()
    row = com.row(com["insee"].to_list().index(commune), named=True)
    lat0, lon0 = float(row["lat"]), float(row["lon"])
    dlat = km / 111.0 + 0.01
    dlon = km / (111.0 * max(np.cos(np.radians(lat0)), 0.05)) + 0.01
    sql.add(
        "lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?",
        lat0 - dlat,
        lat0 + dlat,
        lon0 - dlon,
        lon0 + dlon,
    )
    sql.add(
        f"2 * {EARTH_KM} * asin(sqrt(pow(sin(radians(lat::DOUBLE - ?) / 2), 2) + "
        "cos(radians(?)) * cos(radians(lat::DOUBLE)) * pow(sin(radians(lon::DOUBLE - ?) / 2), 2)"
        ")) <= ?",
        lat0,
        lat0,
        lon0,
        km,
    )


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def _in(sql: Sql, column: str, values: list[str], layout: Layout) -> None:
    codes = layout.codes.get(column)
    if codes is None:  # an ENUM column (departments, communes...): rows sorted, IN prunes
        enum = layout.enum_types.get(column)
        if enum and len(values) > SHORT_LIST:
            # A long IN list is evaluated value by value; a semi-join on the list is not.
            sql.add(f"{column} IN (SELECT unnest(?::VARCHAR[])::{enum})", list(values))
        else:
            sql.add(f"{column} IN ({_placeholders(len(values))})", *values)
        return
    ints = [codes[v] for v in values]
    if len(ints) == 1:  # an equality is pushed into the scan
        sql.add(f"{column} = ?", ints[0])
    elif max(ints) < 32:  # DuckDB evaluates IN lists slowly; one shift-and-mask is 2x faster
        sql.add(f"((?::UINTEGER >> {column}) & 1) = 1", sum(1 << i for i in ints))
    else:
        sql.add(f"{column} IN ({_placeholders(len(ints))})", *ints)


def _profile(sql: Sql, f: _Filters, require_eligible: bool) -> None:
    """One test for sex, housing, dwelling, children and eligibility together."""
    wanted: dict[str, set[Any]] = {}
    for name in PROFILE_BITS:
        value = getattr(f, name)
        if value is not None:
            wanted[name] = set(value) if isinstance(value, list) else {value}
    if not wanted and not require_eligible:
        return
    mask = 0
    for code in range(PROFILE_VALUES):
        if require_eligible and not code >> ELIGIBLE_BIT & 1:
            continue
        if all(
            PROFILE_BITS[name][code >> bit & 1] in wanted[name]
            for bit, name in enumerate(PROFILE_BITS)
            if name in wanted
        ):
            mask |= 1 << code
    allowed = [code for code in range(PROFILE_VALUES) if mask >> code & 1]
    if not allowed:
        sql.add("FALSE")
    elif allowed == list(range(allowed[0], allowed[-1] + 1)):
        sql.add("profile BETWEEN ? AND ?", allowed[0], allowed[-1])
    else:
        sql.add("((?::UINTEGER >> profile) & 1) = 1", mask)


def _filters(sql: Sql, f: _Filters, today: date, layout: Layout, eligible: bool) -> None:
    _profile(sql, f, eligible)
    for key, column in LIST_COLUMNS.items():
        values = getattr(f, key)
        if values is not None and column not in PROFILE_BITS:
            _in(sql, column, values, layout)
    if f.age is not None:
        oldest_birth, youngest_birth = birth_bounds(today, f.age.min, f.age.max)
        sql.add("birth_date <= ? AND birth_date > ?", oldest_birth, youngest_birth)
    if f.radius is not None:
        _radius(sql, f.radius.commune, f.radius.km)
    if f.interests is not None:
        mask = 0
        for code in f.interests:
            mask |= 1 << layout.interest_bits.index(code)
        sql.add("(interests & ?) <> 0", mask)


def compile_criteria(criteria: Criteria, today: date, layout: Layout) -> Sql:
    """The WHERE clause of a segment, eligibility included (it cannot be left out)."""
    sql = Sql()
    _filters(sql, criteria, today, layout, eligible=True)
    if criteria.exclude is not None:
        inner = Sql()
        _filters(inner, criteria.exclude, today, layout, eligible=False)
        if inner.clauses:
            sql.add(f"NOT ({inner.where()})", *inner.params)
    if criteria.exclusion_files:
        # The engine's table of the files' members (Engine.load_exclusion): shared by counts
        # and draws, since both compile here.
        files = criteria.exclusion_files
        sql.add(
            f"prospect_id NOT IN (SELECT prospect_id FROM {EXCLUSION_TABLE} "  # noqa: S608 (ours)
            f"WHERE file_id IN ({_placeholders(len(files))}))",
            *files,
        )
    return sql


UNDER_AGE_BAND = "under 18"
# The age band's small code (what age_band_code_sql gives) -> its label; 0 is under the bands.
AGE_BAND_LABELS = (UNDER_AGE_BAND, *(label for label, _, _ in reference.AGE_BANDS))


def age_band_code_sql(today: date) -> tuple[str, list[Any]]:
    """The age band of `birth_date` on `today` as its index in AGE_BAND_LABELS (a UTINYINT),
    with its parameters: the same bands as age_band_sql."""
    parts, params = [], []
    for code, (_, lo, _) in reversed(list(enumerate(reference.AGE_BANDS, start=1))):
        parts.append("WHEN birth_date <= ? THEN ?::UTINYINT")
        params.extend([years_before(today, lo), code])
    return "CASE " + " ".join(parts) + " ELSE 0::UTINYINT END", params


def age_band_sql(today: date) -> tuple[str, list[Any]]:
    """A CASE expression giving the age band of `birth_date` on `today`, with its parameters."""
    parts, params = [], []
    for label, lo, _ in reversed(reference.AGE_BANDS):
        parts.append("WHEN birth_date <= ? THEN ?")
        params.extend([years_before(today, lo), label])
    return "CASE " + " ".join(parts) + f" ELSE '{UNDER_AGE_BAND}' END", params
