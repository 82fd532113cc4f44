"""What a customer's criteria can reach, from the criteria alone: the breakdown cells where a
prospect matching them may be. Whoever wrote the criteria knows every other cell is empty; an
empty cell the criteria reach, though, could as well hold someone, and is protected as a small
one (segmentation.privacy: `Cell.possible`, `suppress_possible`). Used by quotes (breakdown
cells), dispatch (the waves an order lists) and reports (breakdown cells).

`exclude` is left out throughout: it only removes people, and leaving it out can only make a
reach wider, i.e. protect more."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import polars as pl

from datasets import reference
from segmentation.compiler import EARTH_KM
from segmentation.criteria import Criteria, allowed

# A prospect's coordinates are its commune's centre stored as float32 (metres off): a
# commune this much beyond the radius is counted in, so the reach is never short.
RADIUS_MARGIN_KM = 1.0

NDArray = np.ndarray[Any, Any]


@cache
def region_of() -> dict[str, str]:
    """Every department -> its region."""
    deps = reference.departments()
    return dict(zip(deps["code"], deps["region_code"], strict=True))


@cache
def _places() -> tuple[dict[str, str], dict[str, set[str]]]:
    """Commune -> its department; postcode -> the departments of its communes."""
    com = reference.communes()
    of_commune = dict(zip(com["insee"], com["department"], strict=True))
    of_postcode: dict[str, set[str]] = {}
    pairs = com.select("department", pl.col("postcodes").str.split("|")).explode("postcodes")
    for dep, code in pairs.iter_rows():
        of_postcode.setdefault(code, set()).add(dep)
    return of_commune, of_postcode


@cache
def _centres() -> tuple[dict[str, int], NDArray, NDArray, NDArray]:
    """Every commune's row, and per row its centre (latitude, longitude, in radians) and its
    department."""
    com = reference.communes()
    return (
        {c: i for i, c in enumerate(com["insee"])},
        np.radians(com["lat"].to_numpy()),
        np.radians(com["lon"].to_numpy()),
        com["department"].to_numpy(),
    )


def _near(commune: str, km: float) -> set[str]:
    """The departments of the communes whose centre lies within `km` of `commune`'s."""
    row, lat, lon, deps = _centres()
    lat0, lon0 = lat[row[commune]], lon[row[commune]]
    limit = km + RADIUS_MARGIN_KM
    # A distance is at least the latitudes' difference: only those rows need the full formula.
    near = np.abs(lat - lat0) * EARTH_KM <= limit
    lat, lon, deps = lat[near], lon[near], deps[near]
    a = np.sin((lat - lat0) / 2) ** 2 + np.cos(lat0) * np.cos(lat) * np.sin((lon - lon0) / 2) ** 2
    within = 2 * EARTH_KM * np.arcsin(np.sqrt(a)) <= limit
    return set(deps[within].tolist())


def departments(criteria: Criteria) -> set[str]:
    """The departments where a prospect matching `criteria` may live, from its geography
    (AND across keys). Every department when the criteria name no place."""
    regions = region_of()
    out = set(regions)
    if criteria.regions is not None:
        out &= {d for d, r in regions.items() if r in criteria.regions}
    if criteria.departments is not None:
        out &= set(criteria.departments)
    if criteria.communes is not None:  # the communes' tables only when asked (~40 MB)
        out &= {_places()[0][c] for c in criteria.communes}
    if criteria.postcodes is not None:
        out &= {d for p in criteria.postcodes for d in _places()[1].get(p, ())}
    if criteria.radius is not None:
        out &= _near(criteria.radius.commune, criteria.radius.km)
    return out


def regions(criteria: Criteria) -> set[str]:
    """The regions of the departments the criteria reach."""
    of = region_of()
    return {of[d] for d in departments(criteria)}


def age_bands(criteria: Criteria, slack_years: int = 0) -> set[str]:
    """The age bands (reference.AGE_BANDS) meeting the criteria's age range widened by
    `slack_years` on each side: 0 when the ages are counted on the day the range applies
    (a quote), 1 when they are counted on a later day (a report: a birthday may fall between)."""
    lo, hi = (criteria.age.min, criteria.age.max) if criteria.age else (0, 200)
    return {b for b, a, z in reference.AGE_BANDS if a <= hi + slack_years and z >= lo - slack_years}


def listed(criteria: Criteria, key: str) -> set[str]:
    """The values of a list criterion (`sex`, `csp`...) the criteria allow: its list, or every
    value of the catalogue when it is left out."""
    chosen: list[str] | None = getattr(criteria, key)
    return set(chosen) if chosen is not None else set(allowed(key))


def cells(criteria: Criteria, slack_years: int = 0) -> dict[str, set[str]]:
    """Per breakdown dimension of a count (segmentation.engine.DIMENSIONS), the cells the
    criteria reach."""
    return {
        "region": regions(criteria),
        "department": departments(criteria),
        "age_band": age_bands(criteria, slack_years),
        "sex": listed(criteria, "sex"),
        "csp": listed(criteria, "csp"),
    }
