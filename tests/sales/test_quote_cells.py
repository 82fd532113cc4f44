"""Breakdown cells of a quote are no membership oracle (issue 13, "empty versus small"): a
customer who writes criteria that leave one person alone in a cell, or nobody, gets the very
same cells hidden and the same values shown (but for the cells holding that person, whose
shown values are sums of weights: docs/privacy.md). Played through the API with a client key;
the broker's exact counts (the engine) only pick the places and the person."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from datasets import reference
from kit import clock
from segmentation import reach, runtime
from segmentation.criteria import Criteria
from tests.conftest import ScanningClient, auth

PARIS, MARSEILLE = "75056", "13055"  # communes of thousands of prospects in the test base


def _exact(criteria: dict[str, Any]) -> int:
    """The broker's exact count (eligibility applied as a quote applies it)."""
    seg = runtime.current()
    c = Criteria.model_validate(criteria)
    return seg.count_fresh(c, clock.now(), ("department",)).total


def _quote(
    client: ScanningClient, key: str, criteria: dict[str, Any], breakdowns: str
) -> dict[str, Any]:
    r = client.post(
        "/v1/quotes", params={"breakdowns": breakdowns}, json=criteria, headers=auth(key)
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _cells(quote: dict[str, Any], dim: str) -> dict[str, int | None]:
    return {c["value"]: c["count"] for c in quote["breakdowns"][dim]}


def _hidden(quote: dict[str, Any], dim: str) -> set[str]:
    return {v for v, n in _cells(quote, dim).items() if n is None}


def _shown_but(quote: dict[str, Any], dim: str, holding_the_person: str) -> dict[str, int]:
    return {
        v: n for v, n in _cells(quote, dim).items() if n is not None and v != holding_the_person
    }


def _one_and_none(attributes: pl.DataFrame, department: str) -> tuple[str, str]:
    """A commune of `department` where exactly one eligible prospect lives, and one where
    nobody does."""
    seg = runtime.current()
    ids = seg.engine.matching_ids(Criteria(departments=[department]), clock.today_paris())
    per_commune = (
        attributes.filter(pl.col("prospect_id").is_in(ids))
        .group_by(pl.col("commune").cast(pl.String))
        .len()
    )
    one = sorted(per_commune.filter(pl.col("len") == 1)["commune"].to_list())[0]
    com = reference.communes()
    places = com.filter(pl.col("department") == department)["insee"].to_list()
    none = sorted(set(places) - set(per_commune["commune"].to_list()))[0]
    assert (_exact({"communes": [one]}), _exact({"communes": [none]})) == (1, 0)
    return one, none


@pytest.mark.parametrize(
    "department",
    [
        pytest.param("77", id="in Paris's region"),
        pytest.param("23", id="in another region"),
    ],
)
def test_cells_do_not_tell_whether_one_person_lives_in_a_department(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    attributes: pl.DataFrame,
    department: str,
) -> None:
    """Paris and Marseille (thousands each) and a commune of `department`: where one person
    lives, where nobody does, or the first with that person excluded. Before, the person's
    small cell hid Paris's (or Marseille's region) with it, and an empty one hid nothing."""
    one, none = _one_and_none(attributes, department)
    key = org_keys["acme"]
    quotes = [
        _quote(app_client, key, body, "region,department")
        for body in (
            {"communes": [PARIS, MARSEILLE, one]},
            {"communes": [PARIS, MARSEILLE, none]},
            {"communes": [PARIS, MARSEILLE, one], "exclude": {"communes": [one]}},
        )
    ]
    region = reach.region_of()[department]
    with_him = quotes[0]
    for other in quotes[1:]:
        assert _hidden(other, "department") == _hidden(with_him, "department")
        assert _hidden(other, "region") == _hidden(with_him, "region")
        assert _shown_but(other, "department", department) == _shown_but(
            with_him, "department", department
        )
        assert _shown_but(other, "region", region) == _shown_but(with_him, "region", region)
    for q in quotes:
        deps = _cells(q, "department")
        # The person's department is hidden with another reached one; the third is shown.
        assert deps[department] is None
        assert sum(deps[d] is None for d in ("75", "13")) == 1
        # Departments the criteria cannot reach are empty to whoever wrote them: hidden,
        # and they protect nothing (either Paris or Marseille stays shown).
        assert all(deps[d] is None for d in set(deps) - {"75", "13", department})


def test_a_sex_cell_does_not_tell_whether_one_man_is_there(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """Paris's women (thousands) and, as men, only the oldest man of Paris, or nobody. Before,
    his cell hid the women's with it, and an empty one left theirs shown."""
    oldest = next(
        age
        for age in range(105, 80, -1)
        if _exact({"departments": ["75"], "sex": ["M"], "age": {"min": age}}) == 1
    )
    key = org_keys["acme"]
    with_him, without = (
        _quote(app_client, key, body, "sex,age_band")
        for body in (
            {"departments": ["75"], "exclude": {"sex": ["M"], "age": {"max": oldest - 1}}},
            {"departments": ["75"], "exclude": {"sex": ["M"]}},
        )
    )
    assert _hidden(with_him, "sex") == _hidden(without, "sex") == {"F", "M"}
    assert _hidden(with_him, "age_band") == _hidden(without, "age_band")
    assert _shown_but(with_him, "age_band", "65+") == _shown_but(without, "age_band", "65+")
    assert _shown_but(with_him, "age_band", "65+")  # the other bands are still shown


def test_a_cell_the_criteria_cannot_reach_protects_nothing(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """Women only: the men's cell is empty and the customer knows it; it is hidden, and the
    women's count is shown (it is the total)."""
    q = _quote(app_client, org_keys["acme"], {"departments": ["75"], "sex": ["F"]}, "sex")
    cells = _cells(q, "sex")
    assert cells["M"] is None
    assert cells["F"] == q["shown_count"]
