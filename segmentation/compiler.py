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
LIST_COLUMNS = {
    "sex": "sex", "csp": "csp", "regions": "region", "departments": "department",
    "postcodes": "postcode", "communes": "commune", "housing": "housing",
    "dwelling": "dwelling", "income": "income",
}  # fmt: skip


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


def communes_within(commune: str, km: float) -> list[str]:
    """INSEE codes of the communes whose centre lies within `km` of the given commune's centre."""
    com = reference.communes()
    lat = np.radians(com["lat"].to_numpy())
    lon = np.radians(com["lon"].to_numpy())
    i = com["insee"].to_list().index(commune)
    a = (
        np.sin((lat - lat[i]) / 2) ** 2
        + np.cos(lat) * np.cos(lat[i]) * np.sin((lon - lon[i]) / 2) ** 2
    )
    dist = 2 * EARTH_KM * np.arcsin(np.sqrt(a))
    return sorted(com["insee"].filter(dist <= km).to_list())


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def _filters(sql: Sql, f: _Filters, today: date, interest_bits: list[str]) -> None:
    for key, column in LIST_COLUMNS.items():
        values = getattr(f, key)
        if values is not None:
            sql.add(f"{column} IN ({_placeholders(len(values))})", *values)
    if f.age is not None:
        oldest_birth, youngest_birth = birth_bounds(today, f.age.min, f.age.max)
        sql.add("birth_date <= ? AND birth_date > ?", oldest_birth, youngest_birth)
    if f.radius is not None:
        near = communes_within(f.radius.commune, f.radius.km)
        sql.add(f"commune IN ({_placeholders(len(near))})", *near)
    if f.children is not None:
        sql.add("children = ?", f.children)
    if f.interests is not None:
        mask = 0
        for code in f.interests:
            mask |= 1 << interest_bits.index(code)
        sql.add("(interests & ?) <> 0", mask)


def compile_criteria(criteria: Criteria, today: date, interest_bits: list[str]) -> Sql:
    """The targeting part of the WHERE clause (eligibility is added by the engine)."""
    sql = Sql()
    _filters(sql, criteria, today, interest_bits)
    if criteria.exclude is not None:
        inner = Sql()
        _filters(inner, criteria.exclude, today, interest_bits)
        if inner.clauses:
            sql.add(f"NOT ({inner.where()})", *inner.params)
    return sql


def age_band_sql(today: date) -> tuple[str, list[Any]]:
    """A CASE expression giving the age band of `birth_date` on `today`, with its parameters."""
    parts, params = [], []
    for label, lo, _ in reversed(reference.AGE_BANDS):
        parts.append("WHEN birth_date <= ? THEN ?")
        params.extend([years_before(today, lo), label])
    return "CASE " + " ".join(parts) + " ELSE 'under 18' END", params
