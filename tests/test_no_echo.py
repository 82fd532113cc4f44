"""Nothing a caller types comes back in an error (DESIGN: nothing typed by a customer is
reflected). Marker strings go into every path segment, query parameter, header, body field and
object key of every route of the OpenAPI document, with a client's key and an account manager's;
no error answer contains them."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from kit.db import unit_of_work
from sales.accounts import service as accounts
from sales.accounts.models import Role
from tests.conftest import ScanningClient, auth
from tests.exclusions import outsiders, upload
from tests.factories import create_order, create_quote, deposit_of, send_at
from tests.openapi_cases import Operation, fill, operations, options, plain, string_params

CORE = "qz81x"  # what is searched for in every answer, whatever the case
MARKERS = ("MARKERqz81x", "markerqz81x")  # the second passes lower-case patterns (carriers)
# A text field also gets the marker inside what a parser reads (a message is a template).
FORMS = ("{}", "{{{{ {} }}}}", "{{% {} %}}", "{{{{ civilite.{} }}}}", "{{{{ {} }}")


@pytest.fixture
def world(app_client: ScanningClient, org_keys: dict[str, str]) -> dict[str, Any]:
    """An organisation of this test's own (the markers change its terms and grid), with a
    quote, an order and its deposit invoice: real ids, so that requests reach the services."""
    with unit_of_work() as session:
        org = accounts.add_organisation(session, "Echo Chamber")
        key = accounts.add_key(session, "Echo Chamber", Role.client).key
        org_id = org.id
    quote = create_quote(app_client, key)
    order = create_order(app_client, key, quote)
    hook = app_client.post(
        "/v1/webhooks",
        headers=auth(key),
        json={"url": "http://127.0.0.1:9/hook", "events": ["order.status_changed"]},
    )
    assert hook.status_code == 201, hook.text
    exclusions = upload(app_client, key, outsiders(120, seed=4))
    assert exclusions.status_code == 201, exclusions.text
    return {
        "keys": {"client": key, "am": org_keys["am"]},
        "paths": {
            "quote_id": quote["id"],
            "order_id": order["id"],
            "invoice_id": deposit_of(app_client, key, order["id"])["id"],
            "organisation_id": org_id,
            "carrier": "simulator",
            "webhook_id": hook.json()["id"],
            "request_id": 1,  # a rights request: none yet, the route answers 404
            "file_id": exclusions.json()["id"],
        },
    }


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every string in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    elif isinstance(value, str):
        yield path


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    out = copy.deepcopy(value)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out


def _example(op: Operation, world: dict[str, Any]) -> Any:
    """The request body's documented example (or plain values of the right types), with this
    test's real ids and a fresh date."""
    assert op.body is not None
    examples = options(op.doc, op.body)[0].get("examples")
    body = copy.deepcopy(examples[0]) if examples else fill(op.doc, op.body, plain)
    if isinstance(body, dict):
        if "quote_id" in body:
            body["quote_id"] = world["paths"]["quote_id"]
        if "send_at" in body:
            body["send_at"] = send_at()
    return body


def _bodies(op: Operation, world: dict[str, Any], marker: str) -> Iterator[Any]:
    schema = op.body
    if schema is None:
        yield None
        return
    # The marker everywhere: in every string, as every other value, as a key of every object.
    yield fill(op.doc, schema, lambda _: marker, lambda _: marker, extra_key=marker)
    example = _example(op, world)
    yield example
    # The marker in one field at a time, the rest valid, so that the services see it.
    for path in _leaves(example):
        for form in FORMS:
            yield _replaced(example, path, form.format(marker))
    if isinstance(example, dict):
        yield example | {marker: 1}
        yield {marker if k == next(iter(example)) else k: v for k, v in example.items()}


def _requests(
    op: Operation, world: dict[str, Any], marker: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(url, request arguments) with the marker in one place of the request at a time."""
    paths = {p["name"]: world["paths"][p["name"]] for p in op.params("path")}
    url = op.url(paths)
    for body in _bodies(op, world, marker):
        yield url, {"json": body}
    body = {"json": _example(op, world)} if op.body is not None else {}
    for p in op.params("path"):
        yield op.url(paths | {p["name"]: marker}), body
    for p in string_params(op, "query"):
        yield url, body | {"params": {p["name"]: marker}}
    for p in op.params("query"):  # and where a number or a boolean is expected
        yield url, body | {"params": {p["name"]: marker}}
    for name in [p["name"] for p in op.params("header")] + op.key_headers():
        yield url, body | {"headers": {name: marker}}
    yield url, body | {"headers": {"Authorization": f"Bearer {marker}"}}
    yield url, body | {"headers": {"Authorization": marker}}


@pytest.mark.parametrize("role", ["client", "am"])
def test_no_error_answer_echoes_what_was_typed(
    app_client: ScanningClient, world: dict[str, Any], role: str
) -> None:
    doc = app_client.app.openapi()  # type: ignore[attr-defined]
    statuses: Counter[int] = Counter()
    echoes: set[str] = set()
    undocumented: set[str] = set()
    for op in operations(doc):
        for marker in MARKERS:
            for url, kwargs in _requests(op, world, marker):
                headers = auth(world["keys"][role]) | kwargs.pop("headers", {})
                r = app_client.request(op.method, url, headers=headers, **kwargs)
                statuses[r.status_code] += 1
                if str(r.status_code) not in op.spec["responses"]:
                    undocumented.add(f"{op} -> {r.status_code} {r.text[:200]}")
                said = (r.text + str(r.headers)).lower()
                if r.status_code >= 400 and CORE in said:
                    echoes.add(f"{op} {kwargs} -> {r.status_code} {r.text[:300]}")
    assert not echoes, "\n".join(sorted(echoes))
    assert not undocumented, "\n".join(sorted(undocumented))  # the document tells the truth
    # The markers reached every kind of refusal, not only the schema's.
    assert {401, 404, 422} <= set(statuses), statuses
    if role == "client":
        assert 403 in statuses
    assert sum(statuses.values()) > 300


def test_the_documented_examples_are_valid_requests(
    app_client: ScanningClient, world: dict[str, Any]
) -> None:
    """The examples the markers start from pass validation (else the test above would only
    ever meet the schema's refusals)."""
    doc = app_client.app.openapi()  # type: ignore[attr-defined]
    checked = 0
    for op in operations(doc):
        if op.body is None or "examples" not in options(doc, op.body)[0]:
            continue
        url = op.url({p["name"]: world["paths"][p["name"]] for p in op.params("path")})
        r = app_client.request(
            op.method, url, json=_example(op, world), headers=auth(world["keys"]["am"])
        )
        assert r.status_code != 422 or r.json()["error"] != "invalid_request", (str(op), r.text)
        checked += 1
    assert checked >= 9


def test_a_reused_payment_reference_is_not_echoed(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    first = create_order(app_client, org_keys["acme"])
    second = create_order(app_client, org_keys["acme"])
    for order in (first, second):
        r = app_client.post(
            f"/v1/orders/{order['id']}/payments",
            json={"reference": MARKERS[0], "amount_cents": 100},
            headers=auth(org_keys["am"]),
        )
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "payment_reference_reused"
    assert CORE not in r.text.lower()
