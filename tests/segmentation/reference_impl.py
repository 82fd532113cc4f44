"""A straightforward Polars implementation of the criteria semantics, to check the engine."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl

from datasets import reference


def _age(df: pl.DataFrame, today: date) -> pl.Expr:
    b = pl.col("birth_date")
    had_birthday = (b.dt.month() < today.month) | (
        (b.dt.month() == today.month) & (b.dt.day() <= today.day)
    )
    return pl.lit(today.year) - b.dt.year() - pl.when(had_birthday).then(0).otherwise(1)


def _mask(df: pl.DataFrame, c: dict[str, Any], today: date, bits: list[str]) -> pl.Series:
    m = pl.Series([True] * df.height)
    cols = {
        "sex": "sex",
        "csp": "csp",
        "regions": "region",
        "departments": "department",
        "postcodes": "postcode",
        "communes": "commune",
        "housing": "housing",
        "dwelling": "dwelling",
        "income": "income",
    }
    for key, col in cols.items():
        if key in c:
            m &= df[col].cast(pl.String).is_in(c[key])
    if "age" in c:
        age = df.select(_age(df, today)).to_series()
        m &= (age >= c["age"].get("min", 18)) & (age <= c["age"].get("max", 105))
    if "children" in c:
        m &= df["children"] == c["children"]
    if "interests" in c:
        want = [bits.index(i) for i in c["interests"]]
        got = pl.Series([False] * df.height)
        for b in want:
            got |= (df["interests"] & (1 << b)) != 0
        m &= got
    if "radius" in c:
        com = reference.communes()
        centre = com.filter(pl.col("insee") == c["radius"]["commune"]).row(0, named=True)
        lat1, lon1 = np.radians(centre["lat"]), np.radians(centre["lon"])
        lat2 = np.radians(df["lat"].cast(pl.Float64).to_numpy())
        lon2 = np.radians(df["lon"].cast(pl.Float64).to_numpy())
        a = (
            np.sin((lat2 - lat1) / 2) ** 2
            + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        )
        m &= pl.Series(2 * 6371.0088 * np.arcsin(np.sqrt(a)) <= c["radius"]["km"])
    return m


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def count(
    df: pl.DataFrame,
    c: dict[str, Any],
    today: date,
    bits: list[str],
    excluded: set[int] | None = None,
) -> int:
    m = _mask(df, c, today, bits)
    if "exclude" in c:
        m &= ~_mask(df, c["exclude"], today, bits)
    three_years_ago = _years_before(today, 3)
    m &= df["opt_in"] & (df["last_interaction"] >= three_years_ago)
    if excluded:
        m &= ~df["prospect_id"].is_in(list(excluded))
    return int(m.sum())
