"""Orders through the HTTP API: placing, paying, confirming, reviewing, cancelling, holding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from kit.clock import PARIS
from kit.db import unit_of_work
from kit.settings import Settings
from sales.quotes.models import Quote
from segmentation.models import Reservation
from tests.conftest import ScanningClient, auth
from tests.factories import (
    LONG_STOP_LINK_BASE,
    create_order,
    create_quote,
    deposit_of,
    invoices_of,
    order_body,
    overseas_at_the_limit,
    pay_deposit,
)

METRO = {"regions": ["93"], "sex": ["F"]}  # Provence-Alpes-Cote d'Azur: metropolitan only


def reserved(order_id: str) -> int:
    with unit_of_work() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    Reservation.order_id == order_id, Reservation.released_at.is_(None)
                )
            )
            or 0
        )


def get(client: ScanningClient, key: str, order_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/orders/{order_id}", headers=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_an_order_awaits_its_deposit_with_the_deposit_invoice_issued(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    quote = create_quote(app_client, org_keys["acme"], METRO)
    order = create_order(app_client, org_keys["acme"], quote, quantity=400)
    assert order["status"] == "awaiting_deposit"
    assert order["quantity"] == 400
    assert order["encoding"] == "GSM-7"
    assert order["segments"] == 1
    assert order["message_check"]["preview"].endswith("STOP au 36180 Source: Broker")
    total = order["total"]
    assert total == {
        "amount_excl_vat_cents": order["price"]["total_excl_vat_cents"],
        "vat_cents": order["price"]["vat_cents"],
        "amount_incl_vat_cents": order["price"]["total_incl_vat_cents"],
        "currency": "EUR",
    }
    # 400 contacts at 0.090 + 400 metropolitan segments at 0.045 = 54.00 EUR excl. VAT
    assert total["amount_excl_vat_cents"] == 5_400
    assert total["amount_incl_vat_cents"] == 6_480
    assert order["deposit"]["amount_excl_vat_cents"] == 1_620  # 30%
    assert order["deposit"]["amount_incl_vat_cents"] == 1_944
    assert [e["action"] for e in order["events"]] == ["created", "deposit_invoiced"]
    assert order["events"][0]["by"].startswith("client")
    assert order["reservation"] == "none"
    assert reserved(order["id"]) == 0

    deposit = deposit_of(app_client, org_keys["acme"], order["id"])
    assert deposit["kind"] == "deposit"
    assert deposit["status"] == "unpaid"
    assert deposit["amount_incl_vat_cents"] == 1_944
    assert deposit["vat_cents"] == 324
    assert deposit["number"].startswith(f"{datetime.now(UTC).year}-")
    issued = datetime.fromisoformat(deposit["issued_at"]).astimezone(PARIS)
    assert deposit["due_date"] == issued.date().isoformat()  # due at order (terms of sale)
    assert deposit["id"] in order["invoices"]


def test_the_message_check_is_shown_back(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    quote = create_quote(app_client, org_keys["acme"])
    accents = create_order(app_client, org_keys["acme"], quote, message="Été : -20% à Nice")
    assert accents["encoding"] == "GSM-7"  # é and à are in the GSM alphabet
    fete = create_order(app_client, org_keys["acme"], quote, message="Fête des mères : -20%")
    assert fete["encoding"] == "UCS-2"  # ê is not
    assert "UCS-2" in fete["message_check"]["note"]
    long = create_order(app_client, org_keys["acme"], quote, message="x" * 150)
    assert long["segments"] == 2  # 150 + the mentions > 160
    assert long["total"]["amount_excl_vat_cents"] > accents["total"]["amount_excl_vat_cents"]
    assert long["price"]["transport"][0]["segments_per_message"] == 2


def test_overseas_segments_billed_are_those_sent_with_the_configured_stop_link(
    app_client: ScanningClient, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    settings(stop_link_base=LONG_STOP_LINK_BASE)
    text, sent = overseas_at_the_limit()  # one character over one SMS as dispatch sends it
    quote = create_quote(app_client, org_keys["acme"], {"departments": ["974"]})
    order = create_order(app_client, org_keys["acme"], quote, message=text)
    assert order["segments"] == 2
    assert order["message_check"]["characters"] == len(sent)
    lines = {line["zone"]: line for line in order["price"]["transport"]}
    assert lines["overseas"]["messages"] == order["quantity"]
    assert lines["overseas"]["segments_per_message"] == 2


@pytest.mark.parametrize(
    ("name", "overrides", "status", "error"),
    [
        ("numeric sender", {"sender": "12345"}, 422, "invalid_sender"),
        ("blocked sender", {"sender": "INFO"}, 422, "invalid_sender"),
        ("sender too long", {"sender": "ACMEACMEACME"}, 422, "invalid_sender"),
        ("too many", {"quantity": 10**9}, 422, "quantity_out_of_range"),
        ("too few", {"quantity": 99}, 422, "quantity_out_of_range"),
        ("past", {"send_at": "2020-01-01T10:00:00+01:00"}, 422, "invalid_send_time"),
        ("empty message", {"message": "   "}, 422, "invalid_message"),
        ("too long", {"message": "x" * 1000}, 422, "invalid_message"),
        ("phone variable", {"message": "Hi {{ phone }}"}, 422, "invalid_message"),
        ("link variable", {"message": "https://x.fr/{{ civilite }}"}, 422, "invalid_message"),
        ("template bomb", {"message": "Bonjour {{ civilite * 400000 }}"}, 422, "invalid_message"),
        ("attribute", {"message": "Bonjour {{ civilite.format }}"}, 422, "invalid_message"),
        ("item", {"message": "Bonjour {{ civilite['x'] }}"}, 422, "invalid_message"),
        ("arithmetic", {"message": "Bonjour {{ 7*7 }}"}, 422, "invalid_message"),
        ("filter", {"message": "Bonjour {{ civilite|upper }}"}, 422, "invalid_message"),
        ("call", {"message": "Bonjour {{ civilite.upper() }}"}, 422, "invalid_message"),
        ("statement", {"message": "{% for c in civilite %}{% endfor %}"}, 422, "invalid_message"),
        (
            "unknown quote",
            {"quote_id": "ffffffff-ffff-4fff-bfff-ffffffffffff"},
            404,
            "quote_not_found",
        ),
        ("malformed quote id", {"quote_id": "nope"}, 404, "quote_not_found"),
        ("quote id with NUL", {"quote_id": "nope\u0000"}, 422, "invalid_request"),
        ("control character", {"message": "Soldes\u0000 -20%"}, 422, "invalid_request"),
        ("extra field", {"recipients": ["x"]}, 422, None),
    ],
)
def test_bad_orders_get_a_clear_error_and_change_nothing(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    name: str,
    overrides: dict[str, Any],
    status: int,
    error: str | None,
) -> None:
    key = org_keys["acme"]
    quote = create_quote(app_client, key)
    orders_before = len(app_client.get("/v1/orders?limit=500", headers=auth(key)).json()["items"])
    invoices_before = len(
        app_client.get("/v1/invoices?limit=500", headers=auth(key)).json()["items"]
    )
    r = app_client.post("/v1/orders", json=order_body(quote, **overrides), headers=auth(key))
    assert r.status_code == status, r.text
    if error:
        assert r.json()["error"] == error
        assert r.json()["detail"]
    assert (
        len(app_client.get("/v1/orders?limit=500", headers=auth(key)).json()["items"])
        == orders_before
    )
    assert (
        len(app_client.get("/v1/invoices?limit=500", headers=auth(key)).json()["items"])
        == invoices_before
    )


def test_an_expired_quote_or_another_organisations_quote_cannot_be_ordered(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    quote = create_quote(app_client, org_keys["acme"])
    r = app_client.post("/v1/orders", json=order_body(quote), headers=auth(org_keys["globex"]))
    assert r.status_code == 404
    with unit_of_work() as session:
        session.execute(
            update(Quote)
            .where(Quote.id == quote["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    r = app_client.post("/v1/orders", json=order_body(quote), headers=auth(org_keys["acme"]))
    assert r.status_code == 409
    assert r.json()["error"] == "quote_expired"
    assert "new quote" in r.json()["detail"]


def test_a_time_without_offset_is_paris_time(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    year = datetime.now(UTC).year + 1
    order = create_order(app_client, org_keys["acme"], send_at=f"{year}-01-15T10:00:00")
    assert datetime.fromisoformat(order["send_at"]) == datetime(year, 1, 15, 9, tzinfo=UTC)
    summer = create_order(app_client, org_keys["acme"], send_at=f"{year}-07-15T10:00:00")
    assert datetime.fromisoformat(summer["send_at"]) == datetime(year, 7, 15, 8, tzinfo=UTC)


def test_the_deposit_confirms_reserves_and_schedules_once(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=300)
    deposit = deposit_of(app_client, acme, order["id"])
    pay = {"reference": f"VIR-{order['id'][:8]}", "amount_cents": deposit["amount_incl_vat_cents"]}

    r = app_client.post(f"/v1/orders/{order['id']}/payments", json=pay, headers=auth(acme))
    assert r.status_code == 403  # clients do not record payments
    r = app_client.post(f"/v1/orders/{order['id']}/payments", json=pay, headers=auth(am))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["invoice"]["status"] == "paid"
    assert body["invoice"]["outstanding_cents"] == 0
    assert body["order"]["status"] == "scheduled"  # content is auto-approved for Acme
    assert reserved(order["id"]) == 300

    again = app_client.post(f"/v1/orders/{order['id']}/payments", json=pay, headers=auth(am))
    assert again.status_code == 200
    assert again.json()["payment"]["replayed"] is True
    other = dict(pay, amount_cents=pay["amount_cents"] - 1)
    r = app_client.post(f"/v1/orders/{order['id']}/payments", json=other, headers=auth(am))
    assert r.status_code == 409
    assert r.json()["error"] == "payment_reference_reused"
    r = app_client.post(
        f"/v1/orders/{order['id']}/payments",
        json={"reference": "VIR-other", "amount_cents": 100},
        headers=auth(am),
    )
    assert r.status_code == 409
    assert r.json()["error"] == "nothing_to_pay"

    seen = get(app_client, acme, order["id"])
    actions = [e["action"] for e in seen["events"]]
    assert actions == ["created", "deposit_invoiced", "payment_recorded", "confirmed", "scheduled"]
    assert seen["deposit_paid"] is True
    assert seen["reservation"] == "complete"
    assert "reserved" not in seen  # exact figures are for the broker's staff
    staff = get(app_client, am, order["id"])
    assert staff["reserved"] == 300
    assert staff["quote_exact_count"] >= 300
    assert reserved(order["id"]) == 300  # the replay reserved nothing more


def test_partial_payments_and_overpayment(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=200)
    due = deposit_of(app_client, acme, order["id"])["amount_incl_vat_cents"]
    url = f"/v1/orders/{order['id']}/payments"
    r = app_client.post(
        url, json={"reference": "P1-" + order["id"][:8], "amount_cents": due // 3}, headers=auth(am)
    )
    assert r.status_code == 201
    assert r.json()["invoice"]["status"] == "partially_paid"
    assert r.json()["order"]["status"] == "awaiting_deposit"
    r = app_client.post(
        url, json={"reference": "P2-" + order["id"][:8], "amount_cents": due}, headers=auth(am)
    )
    assert r.status_code == 422
    assert r.json()["outstanding_cents"] == due - due // 3
    r = app_client.post(
        url,
        json={"reference": "P3-" + order["id"][:8], "amount_cents": due - due // 3},
        headers=auth(am),
    )
    assert r.status_code == 201
    assert r.json()["order"]["status"] == "scheduled"
    for bad in ({"reference": "P4", "amount_cents": 0}, {"reference": "a b", "amount_cents": 5}):
        assert app_client.post(url, json=bad, headers=auth(am)).status_code == 422


def test_manual_content_review(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    globex, am = org_keys["globex"], org_keys["am"]
    orgs = app_client.get("/v1/organisations", headers=auth(am)).json()
    gid = next(o["id"] for o in orgs if o["name"] == "Globex")
    r = app_client.patch(
        f"/v1/organisations/{gid}", json={"content_review": "manual"}, headers=auth(am)
    )
    assert r.status_code == 200
    assert r.json()["content_review"] == "manual"
    try:
        order = create_order(app_client, globex, sender="GLOBEX", quantity=150)
        assert order["content_review"] == {"status": "pending", "note": None}
        assert pay_deposit(app_client, globex, am, order["id"]).status_code == 201
        assert get(app_client, globex, order["id"])["status"] == "confirmed"
        url = f"/v1/orders/{order['id']}"
        assert app_client.post(url + "/approve", headers=auth(globex)).status_code == 403
        r = app_client.post(
            url + "/reject", json={"reason": "no price conditions stated"}, headers=auth(am)
        )
        assert r.status_code == 200
        assert r.json()["content_review"] == {
            "status": "rejected",
            "note": "no price conditions stated",
        }
        longer = app_client.patch(url, json={"message": "y" * 200}, headers=auth(globex))
        assert longer.status_code == 409
        assert longer.json()["error"] == "price_would_change"
        r = app_client.patch(
            url, json={"message": "-20% jusqu'au 31/12, voir conditions"}, headers=auth(globex)
        )
        assert r.status_code == 200
        assert r.json()["content_review"]["status"] == "pending"
        r = app_client.post(url + "/approve", json={}, headers=auth(am))
        assert r.status_code == 200
        assert r.json()["status"] == "scheduled"
        again = app_client.post(url + "/approve", json={}, headers=auth(am))
        assert again.status_code == 200
        assert again.json()["status"] == "scheduled"
        late = app_client.patch(url, json={"sender": "GLOBEX2"}, headers=auth(globex))
        assert late.status_code == 409
    finally:
        app_client.patch(
            f"/v1/organisations/{gid}", json={"content_review": "auto"}, headers=auth(am)
        )


def test_cancelling_before_payment_cancels_the_deposit_invoice(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme = org_keys["acme"]
    order = create_order(app_client, acme)
    r = app_client.post(
        f"/v1/orders/{order['id']}/cancel", json={"reason": "budget cut"}, headers=auth(acme)
    )
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    invoices = {i["kind"]: i for i in invoices_of(app_client, acme, order["id"])}
    assert invoices["deposit"]["status"] == "cancelled"
    note = invoices["credit_note"]
    assert note["status"] == "applied"
    assert note["corrects"] == invoices["deposit"]["number"]
    assert note["amount_incl_vat_cents"] == invoices["deposit"]["amount_incl_vat_cents"]
    again = app_client.post(f"/v1/orders/{order['id']}/cancel", headers=auth(acme))
    assert again.status_code == 409
    assert again.json()["current_status"] == "cancelled"
    assert "cancelled" in again.json()["detail"]


def test_after_confirmation_a_cancellation_is_a_request_the_broker_accepts(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=120)
    pay_deposit(app_client, acme, am, order["id"])
    url = f"/v1/orders/{order['id']}/cancel"
    r = app_client.post(url, json={"reason": "wrong date"}, headers=auth(acme))
    assert r.status_code == 200
    assert r.json()["status"] == "scheduled"
    assert r.json()["cancellation_requested"] is True
    assert app_client.post(url, headers=auth(acme)).status_code == 409
    pending = app_client.get(
        "/v1/orders", params={"cancellation_requested": True}, headers=auth(am)
    ).json()["items"]
    assert order["id"] in {o["id"] for o in pending}
    r = app_client.post(url, json={}, headers=auth(am))
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert r.json()["events"][-1]["details"]["deposit"] == "kept"
    assert reserved(order["id"]) == 0
    kinds = [i["kind"] for i in invoices_of(app_client, acme, order["id"])]
    assert kinds == ["deposit"]  # the deposit is kept: no credit note

    refunded = create_order(app_client, acme, quantity=120)
    pay_deposit(app_client, acme, am, refunded["id"])
    r = app_client.post(
        f"/v1/orders/{refunded['id']}/cancel", json={"refund_deposit": True}, headers=auth(am)
    )
    assert r.status_code == 200
    notes = [i for i in invoices_of(app_client, acme, refunded["id"]) if i["kind"] == "credit_note"]
    assert len(notes) == 1
    assert notes[0]["status"] == "refund_due"


def test_hold_and_release(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=110)
    pay_deposit(app_client, acme, am, order["id"])
    url = f"/v1/orders/{order['id']}"
    assert (
        app_client.post(url + "/hold", json={"reason": "complaint"}, headers=auth(acme)).status_code
        == 403
    )
    r = app_client.post(url + "/hold", json={"reason": "complaint under review"}, headers=auth(am))
    assert r.status_code == 200
    assert r.json()["status"] == "on_hold"
    assert r.json()["hold_reason"] == "complaint under review"
    assert reserved(order["id"]) == 110  # a hold keeps the reservation
    held = app_client.get("/v1/orders", params={"status": "on_hold"}, headers=auth(am))
    assert order["id"] in {o["id"] for o in held.json()["items"]}
    r = app_client.post(url + "/release", headers=auth(am))
    assert r.status_code == 200
    assert r.json()["status"] == "scheduled"
    r = app_client.post(url + "/release", headers=auth(am))
    assert r.status_code == 409
    assert r.json()["current_status"] == "scheduled"


def test_a_segment_that_fell_short_holds_the_order_until_the_customer_decides(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    quote = create_quote(app_client, acme, {"departments": ["04", "05"]})
    shown = quote["shown_count"]
    assert shown is not None
    assert shown > 600, quote
    first = create_order(app_client, acme, quote, quantity=shown // 2)
    pay_deposit(app_client, acme, am, first["id"])
    assert get(app_client, acme, first["id"])["status"] == "scheduled"
    # The same people cannot be reserved twice in the same weeks: the second order falls short.
    second = create_order(app_client, acme, quote, quantity=shown)
    pay_deposit(app_client, acme, am, second["id"])
    held = get(app_client, acme, second["id"])
    assert held["status"] == "on_hold"
    assert held["reservation"] == "short"
    offered = held["offered_quantity"]
    assert offered is not None
    assert offered % 10 == 0
    assert offered < 0.9 * shown
    r = app_client.post(f"/v1/orders/{second['id']}/accept-volume", headers=auth(acme))
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert accepted["status"] == "scheduled"
    assert accepted["quantity"] == offered
    assert accepted["total"]["amount_incl_vat_cents"] < second["total"]["amount_incl_vat_cents"]
    assert reserved(second["id"]) == offered

    third = create_order(app_client, acme, quote, quantity=shown)
    pay_deposit(app_client, acme, am, third["id"])
    held = get(app_client, acme, third["id"])
    assert held["status"] == "on_hold"
    assert held["offered_quantity"] is None
    r = app_client.post(f"/v1/orders/{third['id']}/accept-volume", headers=auth(acme))
    assert r.status_code == 409
    r = app_client.post(f"/v1/orders/{third['id']}/cancel", headers=auth(acme))
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    notes = [i for i in invoices_of(app_client, acme, third["id"]) if i["kind"] == "credit_note"]
    assert [n["status"] for n in notes] == ["refund_due"]


def test_listing_orders(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    acme, globex, am = org_keys["acme"], org_keys["globex"], org_keys["am"]
    a = create_order(app_client, acme, quantity=100)
    g = create_order(app_client, globex, quantity=100, sender="GLOBEX")
    mine = {o["id"] for o in app_client.get("/v1/orders", headers=auth(acme)).json()["items"]}
    assert a["id"] in mine
    assert g["id"] not in mine
    # A client cannot widen its view with the account managers' filter.
    other = app_client.get("/v1/orders", params={"organisation_id": 999}, headers=auth(acme))
    assert a["id"] in {o["id"] for o in other.json()["items"]}
    everything = app_client.get("/v1/orders?limit=500", headers=auth(am)).json()["items"]
    assert {a["id"], g["id"]} <= {o["id"] for o in everything}
    orgs = {
        o["name"]: o["id"] for o in app_client.get("/v1/organisations", headers=auth(am)).json()
    }
    only = app_client.get(
        "/v1/orders", params={"organisation_id": orgs["Globex"], "limit": 500}, headers=auth(am)
    ).json()["items"]
    assert {o["organisation"] for o in only} == {"Globex"}
    newest = app_client.get("/v1/orders", params={"limit": 1}, headers=auth(globex)).json()
    assert newest["items"][0]["id"] == g["id"]
    assert app_client.get("/v1/orders?status=bogus", headers=auth(am)).status_code == 422


def test_another_organisation_reaches_nothing(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, globex = org_keys["acme"], org_keys["globex"]
    order = create_order(app_client, acme, quantity=100)
    deposit = deposit_of(app_client, acme, order["id"])
    url = f"/v1/orders/{order['id']}"
    g = auth(globex)
    attempts = [
        app_client.get(url, headers=g),
        app_client.patch(url, json={"sender": "GLOBEX"}, headers=g),
        app_client.post(url + "/cancel", json={}, headers=g),
        app_client.post(url + "/accept-volume", headers=g),
        app_client.get(f"/v1/invoices/{deposit['id']}", headers=g),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    # Indistinguishable from an order that does not exist.
    missing = app_client.get("/v1/orders/ffffffff-ffff-4fff-bfff-ffffffffffff", headers=g)
    assert attempts[0].json().keys() == missing.json().keys()
    assert attempts[0].json()["error"] == missing.json()["error"] == "order_not_found"
    listed = app_client.get("/v1/invoices?limit=500", headers=g).json()["items"]
    assert deposit["id"] not in {i["id"] for i in listed}
    assert (
        app_client.get("/v1/invoices", params={"order_id": order["id"]}, headers=g).json()["items"]
        == []
    )
    # Account managers' endpoints are closed to clients whatever the order.
    staff_only = [
        app_client.post(url + "/payments", json={"reference": "X1", "amount_cents": 1}, headers=g),
        app_client.post(url + "/approve", headers=g),
        app_client.post(url + "/reject", json={"reason": "nope"}, headers=g),
        app_client.post(url + "/hold", json={"reason": "nope"}, headers=g),
        app_client.post(url + "/release", headers=g),
        app_client.get("/v1/organisations", headers=g),
        app_client.patch("/v1/organisations/1", json={"content_review": "auto"}, headers=g),
        app_client.put("/v1/organisations/1/price-grid", json={}, headers=g),
    ]
    assert [r.status_code for r in staff_only] == [403] * len(staff_only)
    # The order is untouched.
    assert get(app_client, acme, order["id"])["events"] == order["events"]


def test_a_deposit_paid_while_held_confirms_on_release(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=100)
    url = f"/v1/orders/{order['id']}"
    r = app_client.post(
        url + "/hold", json={"reason": "checking the sender name"}, headers=auth(am)
    )
    assert r.json()["status"] == "on_hold"
    assert pay_deposit(app_client, acme, am, order["id"]).status_code == 201
    held = get(app_client, acme, order["id"])
    assert held["status"] == "on_hold"
    assert held["deposit_paid"] is True
    assert reserved(order["id"]) == 0  # nothing is drawn while held
    r = app_client.post(url + "/release", headers=auth(am))
    assert r.status_code == 200
    assert r.json()["status"] == "scheduled"
    assert reserved(order["id"]) == 100
    actions = [e["action"] for e in r.json()["events"]][-4:]
    assert actions == ["payment_recorded", "released", "confirmed", "scheduled"]


def test_a_rejected_message_is_not_sent_after_a_hold(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=100)
    pay_deposit(app_client, acme, am, order["id"])
    url = f"/v1/orders/{order['id']}"
    r = app_client.post(url + "/reject", json={"reason": "misleading"}, headers=auth(am))
    assert r.status_code == 409  # scheduled: hold it first
    app_client.post(url + "/hold", json={"reason": "content check"}, headers=auth(am))
    app_client.post(url + "/reject", json={"reason": "misleading"}, headers=auth(am))
    r = app_client.post(url + "/release", headers=auth(am))
    assert r.json()["status"] == "confirmed"  # not scheduled with a rejected message
    # Acme's content is auto-approved, but a rejected message goes back to review, and an
    # unchanged one is refused.
    r = app_client.patch(url, json={}, headers=auth(acme))
    assert r.status_code == 422
    assert r.json()["error"] == "nothing_to_revise"
    r = app_client.patch(
        url, json={"message": "-20% sur tout, voir conditions"}, headers=auth(acme)
    )
    assert r.status_code == 200
    assert r.json()["content_review"]["status"] == "pending"
    assert r.json()["status"] == "confirmed"
    r = app_client.post(url + "/approve", headers=auth(am))
    assert r.json()["status"] == "scheduled"


def test_a_partly_paid_deposit_on_cancellation(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=200)
    url = f"/v1/orders/{order['id']}"
    due = deposit_of(app_client, acme, order["id"])["amount_incl_vat_cents"]
    paid = due // 4
    r = app_client.post(
        url + "/payments",
        json={"reference": f"PART-{order['id']}", "amount_cents": paid},
        headers=auth(am),
    )
    assert r.status_code == 201
    r = app_client.post(url + "/cancel", json={}, headers=auth(acme))
    assert r.json()["cancellation_requested"] is True  # money was received: a request
    r = app_client.post(url + "/cancel", json={"refund_deposit": True}, headers=auth(am))
    assert r.json()["status"] == "cancelled"
    docs = invoices_of(app_client, acme, order["id"])
    deposit = next(i for i in docs if i["kind"] == "deposit")
    notes = {n["status"]: n for n in docs if n["kind"] == "credit_note"}
    assert deposit["status"] == "cancelled"
    assert deposit["outstanding_cents"] == 0
    assert deposit["penalty"] is None
    assert notes["applied"]["amount_incl_vat_cents"] == due - paid  # what was still due
    assert notes["refund_due"]["amount_incl_vat_cents"] == paid  # what was received
    r = app_client.post(
        url + "/payments",
        json={"reference": f"LATE-{order['id']}", "amount_cents": 10},
        headers=auth(am),
    )
    assert r.status_code == 409
    assert r.json()["error"] == "nothing_to_pay"


def test_an_account_manager_may_decline_a_cancellation(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=100)
    pay_deposit(app_client, acme, am, order["id"])
    url = f"/v1/orders/{order['id']}"
    app_client.post(url + "/cancel", json={"reason": "changed our mind"}, headers=auth(acme))
    r = app_client.post(
        url + "/decline-cancellation", json={"reason": "the order is firm"}, headers=auth(am)
    )
    assert r.status_code == 200
    assert r.json()["cancellation_requested"] is False
    assert r.json()["status"] == "scheduled"
    assert r.json()["events"][-1]["action"] == "cancellation_declined"
    again = app_client.post(
        url + "/decline-cancellation", json={"reason": "x" * 5}, headers=auth(am)
    )
    assert again.status_code == 409


def test_malformed_input_is_a_clear_4xx(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = auth(org_keys["acme"]), auth(org_keys["am"])
    assert app_client.get("/v1/orders?offset=99999999999999999999", headers=acme).status_code == 422
    assert (
        app_client.get("/v1/invoices?offset=99999999999999999999", headers=acme).status_code == 422
    )
    assert app_client.get("/v1/orders/%00", headers=acme).status_code == 404
    assert app_client.get("/v1/invoices/%00", headers=acme).status_code == 404
    assert app_client.get("/v1/quotes/%00", headers=acme).status_code == 404
    assert app_client.get("/v1/invoices?order_id=%00", headers=acme).status_code == 422
    huge = 10**20
    assert app_client.get(f"/v1/organisations/{huge}/price-grid", headers=am).status_code == 422
    assert app_client.get(f"/v1/orders?organisation_id={huge}", headers=am).status_code == 422
    negative = {
        "rental_tiers": [{"min_volume": 0, "per_contact_eur": "0.05"}],
        "transport_per_segment_eur": {"metro": "-0.5", "overseas": "0.06"},
        "vat_rate": "0.20",
    }
    orgs = app_client.get("/v1/organisations", headers=am).json()
    r = app_client.put(f"/v1/organisations/{orgs[0]['id']}/price-grid", json=negative, headers=am)
    assert r.status_code == 422
    # Error messages stay readable: times are written for people, not masked as numbers; the
    # time typed is not echoed, the earliest one is given.
    quote = create_quote(app_client, org_keys["acme"])
    r = app_client.post(
        "/v1/orders", json=order_body(quote, send_at="2020-01-01T10:00:00+01:00"), headers=acme
    )
    assert "<redacted>" not in r.json()["detail"]
    assert "2020" not in r.json()["detail"]
    assert "(Paris time)" in r.json()["detail"]
