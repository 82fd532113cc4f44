"""Reference tables committed under datasets/reference/ (sources in reference/SOURCES.md)."""

from __future__ import annotations

import calendar
from datetime import date
from functools import cache
from pathlib import Path

import polars as pl

DIR = Path(__file__).parent / "reference"

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65+", 65, 200),
)


def age_band(born: pl.Expr, on: date) -> pl.Expr:
    """The AGE_BANDS label of a birth date on the day `on`; "unknown" for no birth date or an
    age under the first band. Compared as dates (someone is `lo` or older on `on` when born on
    or before `lo` years earlier): no calendar arithmetic per row."""
    band = pl.lit("unknown")
    for label, lo, _ in AGE_BANDS:  # ascending: the last true bound wins
        band = pl.when(born <= _years_before(on, lo)).then(pl.lit(label)).otherwise(band)
    return pl.when(born.is_null()).then(pl.lit("unknown")).otherwise(band)


def _years_before(on: date, years: int) -> date:
    """The last birth date of someone `years` old on `on` (February 28 for a February 29
    birthday in a common year)."""
    year = on.year - years
    day = min(on.day, calendar.monthrange(year, on.month)[1])
    return date(year, on.month, day)


def _read(name: str, codes: tuple[str, ...] = ()) -> pl.DataFrame:
    return pl.read_csv(DIR / name, schema_overrides={c: pl.String for c in codes})


@cache
def departments() -> pl.DataFrame:
    return _read("departments.csv", ("code", "region_code"))


@cache
def regions() -> pl.DataFrame:
    return _read("regions.csv", ("code",))


@cache
def communes() -> pl.DataFrame:
    return _read("communes.csv", ("insee", "department", "postcodes"))


@cache
def age_sex() -> pl.DataFrame:
    return _read("age_sex.csv")


@cache
def pcs_by_age() -> pl.DataFrame:
    return _read("pcs_by_age.csv")


@cache
def pcs() -> pl.DataFrame:
    return _read("pcs.csv", ("code",))


@cache
def household() -> pl.DataFrame:
    return _read("household.csv")


@cache
def income() -> pl.DataFrame:
    return _read("income.csv", ("code",))


@cache
def interests() -> pl.DataFrame:
    return _read("interests.csv")


@cache
def consent_sources() -> pl.DataFrame:
    return _read("consent_sources.csv", ("code",))
