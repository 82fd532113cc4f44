"""Whatever a client sends, the answer is the service's error shape and never a 500: text that is
not valid Unicode, dates out of any sane range, bodies that cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kit import clock
from kit.settings import get_settings
from tests.conftest import ScanningClient, auth
from tests.factories import create_order, create_quote, order_body
from tests.openapi_cases import Operation, fill, json_body, operations, plain, string_params
from tests.rights import prove

SURROGATE = "\ud800 abc \udfff"
PATHS = {"order_id": "x", "quote_id": "x", "invoice_id": "x", "organisation_id": 1}


def _path_values(op: Operation) -> dict[str, Any]:
    return {p["name"]: PATHS.get(p["name"], "simulator") for p in op.params("path")}


@pytest.fixture(scope="module")
def doc(app_client: ScanningClient) -> dict[str, Any]:
    return dict(app_client.app.openapi())  # type: ignore[attr-defined]


@pytest.fixture
def credentials(
    app_client: ScanningClient, org_keys: dict[str, str], base_numbers: list[str]
) -> dict[str, str]:
    """An account manager's key, and a person's access to the rights routes (a number of the
    base proved by its code), so that every route gets as far as reading its body."""
    return {**auth(org_keys["am"]), **prove(app_client, base_numbers[0])}


def _refused(r: Any) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid_request"
    assert body["problems"]
    assert isinstance(body["detail"], str)


def test_a_lone_surrogate_in_a_billing_address_is_refused_clearly(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    r = app_client.patch(
        "/v1/organisations/1",
        content=b'{"billing_address": "1 rue de la Paix \\ud800 75002 Paris"}',
        headers={**auth(org_keys["am"]), "Content-Type": "application/json"},
    )
    _refused(r)
    assert r.json()["problems"] == [
        "billing_address: contains an invalid character (a lone UTF-16 surrogate or a Unicode "
        "non-character): send valid UTF-8 text"
    ]


@pytest.mark.parametrize("text", ["a\ufffeb", "a\ufdd0b", "a\x85b", "a\x00b", "a\tb"])
def test_non_characters_and_controls_are_refused(
    app_client: ScanningClient, org_keys: dict[str, str], text: str
) -> None:
    r = app_client.post(
        "/v1/messages/check",
        content=json_body({"message": text}),
        headers={**auth(org_keys["acme"]), "Content-Type": "application/json"},
    )
    _refused(r)


def test_every_text_field_of_every_body_refuses_lone_surrogates(
    app_client: ScanningClient, doc: dict[str, Any], credentials: dict[str, str]
) -> None:
    """Every string of every request body (and every object's keys) holds a lone surrogate:
    each request is a 422 in the service's shape, none a 500."""
    tried = 0
    for op in operations(doc):
        schema = op.body
        if schema is None:
            continue
        for extra in (None, SURROGATE):
            body = fill(doc, schema, lambda _: SURROGATE, plain, extra_key=extra)
            r = app_client.request(
                op.method,
                op.url(_path_values(op)),
                content=json_body(body),
                headers={**credentials, "Content-Type": "application/json"},
            )
            _refused(r)
            tried += 1
    assert tried >= 2 * 12


def test_every_text_query_parameter_refuses_control_characters(
    app_client: ScanningClient, org_keys: dict[str, str], doc: dict[str, Any]
) -> None:
    tried = 0
    for op in operations(doc):
        params = list(string_params(op, "query"))
        if not params or op.body is not None:
            continue
        r = app_client.request(
            op.method,
            op.url(_path_values(op)),
            params={p["name"]: "ab\x00cd" for p in params},
            headers=auth(org_keys["am"]),
        )
        _refused(r)
        tried += 1
    assert tried >= 5


def _iso(at: datetime) -> str:
    return at.isoformat()


@pytest.mark.parametrize(
    ("send_at", "why"),
    [
        ("0001-01-01T00:00:00+14:00", "must lie between the years 2000 and 2199"),
        ("0001-01-01T00:00:00", "must lie between the years 2000 and 2199"),
        ("9999-12-31T23:59:59-14:00", "must lie between the years 2000 and 2199"),
        ("1999-12-31T23:00:00+00:00", "must lie between the years 2000 and 2199"),
        ("2199-12-31T10:00:00+01:00", "days ahead"),
        (lambda: _iso(clock.now() - timedelta(minutes=30)), "in the past or too soon"),
        (
            lambda: _iso(
                clock.now() + timedelta(days=get_settings().terms.max_send_horizon_days + 1)
            ),
            "days ahead",
        ),
    ],
)
def test_send_times_out_of_range_are_refused_clearly(
    app_client: ScanningClient, org_keys: dict[str, str], send_at: Any, why: str
) -> None:
    quote = create_quote(app_client, org_keys["acme"])
    at = send_at() if callable(send_at) else send_at
    r = app_client.post(
        "/v1/orders", json=order_body(quote, send_at=at), headers=auth(org_keys["acme"])
    )
    assert r.status_code == 422, r.text
    assert why in r.json()["detail"]
    assert at not in r.text  # the bounds are given, never the time that was typed


def test_a_send_time_a_minute_ago_is_taken_as_now(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """A client's clock a little behind the service's: the order is taken."""
    at = _iso(clock.now() - timedelta(minutes=1))
    create_order(app_client, org_keys["acme"], send_at=at)


@pytest.mark.parametrize(
    ("received_on", "why"),
    [
        ("0001-01-01", "must lie between the years 2000 and 2199"),
        ("9999-12-31", "must lie between the years 2000 and 2199"),
        (lambda: str(clock.today_paris() + timedelta(days=1)), "after today"),
        (lambda: str(clock.today_paris() - timedelta(days=30)), "before the order was placed"),
    ],
)
def test_payment_days_out_of_range_are_refused_clearly(
    app_client: ScanningClient, org_keys: dict[str, str], received_on: Any, why: str
) -> None:
    order = create_order(app_client, org_keys["acme"])
    day = received_on() if callable(received_on) else received_on
    r = app_client.post(
        f"/v1/orders/{order['id']}/payments",
        json={"reference": f"PAY-{order['id']}", "amount_cents": 100, "received_on": day},
        headers=auth(org_keys["am"]),
    )
    assert r.status_code == 422, r.text
    assert why in r.json()["detail"]


@pytest.mark.parametrize(
    "at",
    [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)],
)
def test_times_at_the_ends_of_the_calendar_can_still_be_told(at: datetime) -> None:
    assert str(at.year) in clock.human(at)


MALFORMED = [
    (b'{"message": "\xe9t\xe9"}', "application/json", 422, "encoded in UTF-8"),
    (b"\x80{}", "application/json", 422, "encoded in UTF-8"),
    (b'{"message": "hi"', "application/json", 422, "not valid JSON"),
    (b"message=hi", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
    (b'{"message": "hi"}', "text/plain", 415, "Content-Type: application/json"),
    (b'{"message": "hi"}', None, 415, "Content-Type: application/json"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "why"), MALFORMED)
def test_every_malformed_body_is_answered_in_the_error_shape(
    app_client: ScanningClient,
    credentials: dict[str, str],
    doc: dict[str, Any],
    body: bytes,
    content_type: str | None,
    status: int,
    why: str,
) -> None:
    headers = credentials | ({"Content-Type": content_type} if content_type else {})
    tried = 0
    for op in operations(doc):
        if op.body is None:
            continue
        r = app_client.request(op.method, op.url(_path_values(op)), content=body, headers=headers)
        assert r.status_code == status, (str(op), r.text)
        answer = r.json()
        assert set(answer) == {"error", "detail", "problems"}, answer
        assert why in answer["detail"]
        tried += 1
    assert tried >= 12


def test_unknown_paths_and_methods_are_answered_in_the_error_shape(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    r = app_client.get("/v1/nothing-here", headers=auth(org_keys["acme"]))
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    r = app_client.delete("/v1/quotes", headers=auth(org_keys["acme"]))
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"
    assert r.headers["Allow"] == "POST"
    r = app_client.put("/v1/orders", headers=auth(org_keys["acme"]))
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, POST"  # every method of the path, not the first route's


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "500"),
        ("quantity", True),
        ("quantity", 500.5),
        ("send_at", 1_900_000_000),
    ],
)
def test_json_types_are_read_as_documented(
    app_client: ScanningClient, org_keys: dict[str, str], field: str, value: Any
) -> None:
    """No coercion the document does not promise: "500" is not an integer, 1 not a boolean,
    a number not a date."""
    quote = create_quote(app_client, org_keys["acme"])
    body = order_body(quote) | {field: value}
    r = app_client.post("/v1/orders", json=body, headers=auth(org_keys["acme"]))
    _refused(r)
    assert r.json()["problems"][0].startswith(f"{field}: ")
    whole = order_body(quote) | {"quantity": float(order_body(quote)["quantity"])}
    assert (
        app_client.post("/v1/orders", json=whole, headers=auth(org_keys["acme"])).status_code == 201
    )


def test_flags_are_booleans(app_client: ScanningClient, org_keys: dict[str, str]) -> None:
    r = app_client.patch(
        "/v1/organisations/1", json={"refund_deposit_on_cancel": 0}, headers=auth(org_keys["am"])
    )
    _refused(r)


def test_unknown_fields_and_keys_are_named_by_what_is_allowed(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    am = auth(org_keys["am"])
    r = app_client.patch("/v1/orders/x", json={"mesage": "hello"}, headers=am)
    assert r.json()["problems"] == ["body: unknown field; allowed: message, sender"]
    grid = {
        "rental_tiers": [{"min_volume": 0, "per_contact_eur": "0.05", "prise": 1}],
        "transport_per_segment_eur": {"metro": "-0.5", "overseas": "0.06", "mars": "0.1"},
        "vat_rate": "0.20",
    }
    r = app_client.put("/v1/organisations/1/price-grid", json=grid, headers=am)
    assert r.status_code == 422
    assert sorted(r.json()["problems"]) == [
        "rental_tiers.0: unknown field; allowed: min_volume, per_contact_eur",
        "transport_per_segment_eur.<key>: Input should be 'metro' or 'overseas'",
        "transport_per_segment_eur.metro: Input should be greater than or equal to 0",
    ]
    assert "mars" not in r.text
    assert "prise" not in r.text
