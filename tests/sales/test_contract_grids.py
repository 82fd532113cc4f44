"""Contract price grids set by account managers."""

from __future__ import annotations

from tests.conftest import ScanningClient, auth
from tests.factories import create_order, create_quote

GRID = {
    "name": "globex-2027",
    "rental_tiers": [
        {"min_volume": 0, "per_contact_eur": "0.050"},
        {"min_volume": 10000, "per_contact_eur": "0.040"},
    ],
    "transport_per_segment_eur": {"metro": "0.030", "overseas": "0.060"},
    "vat_rate": "0.20",
}


def test_a_contract_grid_prices_new_quotes_and_orders_only(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    globex, am = auth(org_keys["globex"]), auth(org_keys["am"])
    orgs = {o["name"]: o["id"] for o in app_client.get("/v1/organisations", headers=am).json()}
    gid, aid = orgs["Globex"], orgs["Acme"]
    before = create_order(app_client, org_keys["globex"], sender="GLOBEX", quantity=200)
    assert before["price"]["grid"] == "standard"

    url = f"/v1/organisations/{gid}/price-grid"
    bad = dict(GRID, rental_tiers=[{"min_volume": 5, "per_contact_eur": "0.05"}])
    r = app_client.put(url, json=bad, headers=am)
    assert r.status_code == 422
    assert "volume 0" in r.text
    r = app_client.put(url, json=GRID, headers=am)
    assert r.status_code == 200
    assert r.json()["version"] == 1
    assert app_client.put(url, json=GRID, headers=am).json()["version"] == 2
    try:
        quote = create_quote(app_client, org_keys["globex"])
        assert quote["price"]["grid"] == "globex-2027"
        after = create_order(app_client, org_keys["globex"], quote, sender="GLOBEX", quantity=200)
        assert after["price"]["rental_per_contact_eur"] == "0.050"
        assert after["total"]["amount_incl_vat_cents"] < before["total"]["amount_incl_vat_cents"]
        # The order placed before keeps the price it was ordered at.
        again = app_client.get(f"/v1/orders/{before['id']}", headers=globex).json()
        assert again["price"] == before["price"]
        # Other organisations keep the standard grid and cannot read Globex's.
        assert create_quote(app_client, org_keys["acme"])["price"]["grid"] == "standard"
        r = app_client.get(url, headers=auth(org_keys["acme"]))
        assert r.status_code == 404
        mine = app_client.get(url, headers=globex).json()
        assert mine["contract"] is True
        assert mine["grid"]["name"] == "globex-2027"
        r = app_client.get(f"/v1/organisations/{aid}/price-grid", headers=globex)
        assert r.status_code == 404
    finally:
        assert app_client.delete(url, headers=am).status_code == 204
    assert app_client.get(url, headers=globex).json()["contract"] is False
    assert app_client.delete(url, headers=am).status_code == 404


def test_checking_a_draft_message(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    r = app_client.post(
        "/v1/messages/check",
        json={"message": "Fête des pères chez ACME", "sender": "ACME"},
        headers=auth(org_keys["acme"]),
    )
    assert r.status_code == 200
    metro, overseas = r.json()["metro"], r.json()["overseas"]
    assert metro["encoding"] == "UCS-2"
    assert metro["preview"].endswith("STOP au 36180 Source: Broker")
    assert "STOP https://" in overseas["preview"]
    assert overseas["characters"] > metro["characters"]
    r = app_client.post(
        "/v1/messages/check", json={"message": "x", "sender": "SMS"}, headers=auth(org_keys["acme"])
    )
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_sender"
