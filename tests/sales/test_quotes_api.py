from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ScanningClient, auth

BROAD = {"sex": ["F"], "age": {"min": 25, "max": 60}}
TINY = {"sex": ["M"], "age": {"min": 97, "max": 99}, "csp": ["1"], "departments": ["48"]}


def quote(client: ScanningClient, key: str, criteria: Any) -> Any:
    return client.post("/v1/quotes", json=criteria, headers=auth(key))


def test_catalogue_lists_every_criterion_with_labels(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    r = app_client.get("/v1/criteria", headers=auth(org_keys["acme"]))
    assert r.status_code == 200
    crit = {c["key"]: c for c in r.json()["criteria"]}
    assert {
        "sex",
        "age",
        "csp",
        "regions",
        "departments",
        "postcodes",
        "communes",
        "radius",
        "housing",
        "children",
        "income",
        "interests",
        "exclude",
    } <= set(crit)
    deps = {v["value"] for v in crit["departments"]["values"]}
    assert {"06", "2A", "974", "976"} <= deps
    assert len(deps) == 101
    assert len(crit["interests"]["values"]) >= 8
    assert all(v["label_fr"] and v["label_en"] for v in crit["csp"]["values"])


def test_commune_lookup(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    r = app_client.get(
        "/v1/criteria/communes", params={"search": "nice"}, headers=auth(org_keys["acme"])
    )
    assert r.status_code == 200
    assert any(c["commune"] == "06088" for c in r.json())


def test_broad_quote_is_counted_priced_and_stable(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    r = quote(app_client, org_keys["acme"], BROAD)
    assert r.status_code == 201, r.text
    q = r.json()
    assert isinstance(q["shown_count"], int)
    assert q["shown_count"] >= 100
    assert q["below_minimum"] is False
    assert q["orderable"] is True
    assert "exact_count" not in q
    assert q["price"]["total_incl_vat_cents"] > q["price"]["total_excl_vat_cents"] > 0
    assert q["snapshot"] == "v0001"
    again = quote(app_client, org_keys["acme"], {"age": {"max": 60, "min": 25}, "sex": ["F", "F"]})
    assert again.json()["shown_count"] == q["shown_count"]  # same canonical criteria
    assert again.json()["id"] != q["id"]


def test_account_manager_sees_exact_count(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    q = quote(app_client, org_keys["am"], BROAD).json()
    assert isinstance(q["exact_count"], int)
    assert abs(q["exact_count"] - q["shown_count"]) < 0.05 * q["exact_count"]
    client_view = app_client.get(f"/v1/quotes/{q['id']}", headers=auth(org_keys["acme"]))
    assert client_view.status_code == 404  # the broker's quote is not Acme's


def test_tiny_segment_shows_nothing(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    q = quote(app_client, org_keys["acme"], TINY).json()
    assert q["shown_count"] is None
    assert q["below_minimum"] is True
    assert q["orderable"] is False
    assert q["price"] is None
    for cells in q["breakdowns"].values():
        assert all(c["count"] is None for c in cells)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"shoe_size": [42]}, "body: unknown criterion; allowed criteria: age, children"),
        ({"departments": ["06", "06' OR 1=1 --"]}, "unknown value at position 1 of departments"),
        ({"age": {"min": 60, "max": 20}}, "greater than age max"),
        ({"sex": ["X"]}, "allowed: F, M"),
        ({"csp": []}, "empty list"),
        ({"postcodes": ["06000"] * 501}, "limit of 500"),
        ({"radius": {"commune": "06088", "km": 5000}}, "over the limit"),
        ({"exclude": {"exclude": {"sex": ["F"]}}}, "exclude: unknown criterion; allowed"),
        ({"exclude": {}}, "exclude is empty"),
        ({"radius": {"commune": "06088", "km": True}}, "radius.km"),
        ({"sex": ["x" * 5000]}, "unknown value at position 0 of sex; allowed: F, M"),
    ],
)
def test_bad_criteria_get_clear_422(
    app_client: ScanningClient, org_keys: dict[str, str], body: Any, fragment: str
) -> None:
    r = quote(app_client, org_keys["acme"], body)
    assert r.status_code == 422
    assert fragment in r.json()["detail"]


def test_a_number_typed_into_a_criterion_is_not_echoed(
    app_client: ScanningClient, org_keys: dict[str, str], secrets_of_base: dict[str, set[str]]
) -> None:
    number = next(n for n in sorted(secrets_of_base["numbers"]) if n.startswith("+33"))
    national = "0" + number[3:]
    for typed in (number, national):
        r = quote(app_client, org_keys["acme"], {"postcodes": [typed]})
        assert r.status_code == 422
        assert "unknown value at position 0 of postcodes" in r.json()["detail"]
        assert national[1:] not in r.text


def test_malformed_json(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    r = app_client.post(
        "/v1/quotes",
        content=b'{"sex": [',
        headers={**auth(org_keys["acme"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert "not valid JSON" in r.json()["detail"]


def test_api_key_required(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    assert quote(app_client, "", BROAD).status_code == 401
    r = app_client.post("/v1/quotes", json=BROAD, headers=auth("rk_not-a-key"))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert app_client.get("/v1/criteria").status_code == 401


def test_other_organisation_gets_404(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    q = quote(app_client, org_keys["acme"], BROAD).json()
    assert (
        app_client.get(f"/v1/quotes/{q['id']}", headers=auth(org_keys["globex"])).status_code == 404
    )
    assert (
        app_client.get(f"/v1/quotes/{q['id']}", headers=auth(org_keys["acme"])).status_code == 200
    )
    assert app_client.get(f"/v1/quotes/{q['id']}", headers=auth(org_keys["am"])).status_code == 200
    missing = app_client.get("/v1/quotes/nope", headers=auth(org_keys["globex"]))
    assert missing.status_code == 404
    assert missing.json()["error"] == "quote_not_found"


def test_breakdowns_cover_all_cells(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    default = quote(app_client, org_keys["acme"], {"regions": ["93"]}).json()
    assert set(default["breakdowns"]) == {"region", "department"}
    r = app_client.post(
        "/v1/quotes",
        params={"breakdowns": "all"},
        json={"regions": ["93"]},
        headers=auth(org_keys["acme"]),
    )
    q = r.json()
    b = q["breakdowns"]
    assert set(b) == {"region", "department", "age_band", "sex", "csp"}
    dep = {c["value"]: c for c in b["department"]}
    assert dep["06"]["count"] is not None
    assert dep["06"]["count"] >= 100
    assert dep["75"]["count"] is None
    assert dep["75"]["suppressed"]
    shown = [c["count"] for c in b["sex"]]
    assert all(isinstance(c, int) for c in shown)
    bad = app_client.post(
        "/v1/quotes", params={"breakdowns": "sex,shoe"}, json={}, headers=auth(org_keys["acme"])
    )
    assert bad.status_code == 422
    assert "query.breakdowns: String should match pattern" in bad.json()["detail"]
    assert "shoe" not in bad.text


def test_empty_cells_do_not_hide_real_ones(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """Departments outside the criteria are empty: shown as suppressed, but they do not force
    the two departments asked for to be hidden."""
    r = app_client.post(
        "/v1/quotes",
        params={"breakdowns": "region,department"},
        json={"departments": ["75", "13"]},
        headers=auth(org_keys["acme"]),
    )
    dep = {c["value"]: c for c in r.json()["breakdowns"]["department"]}
    assert dep["75"]["count"] is not None
    assert dep["13"]["count"] is not None
    assert dep["06"]["suppressed"]
    assert dep["06"]["count"] is None
