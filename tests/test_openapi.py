"""The OpenAPI document describes the API as it answers: one error model on every route, with
the statuses each can answer; integrators generate their clients from it."""

from __future__ import annotations

from typing import Any

import pytest

from kit.http_errors import ErrorOut
from tests.conftest import ScanningClient, auth
from tests.openapi_cases import deref, operations

ERROR = "#/components/schemas/ErrorOut"


@pytest.fixture(scope="module")
def doc(app_client: ScanningClient) -> dict[str, Any]:
    return dict(app_client.app.openapi())  # type: ignore[attr-defined]


def _error_schema(response: dict[str, Any]) -> str | None:
    ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    return str(ref) if ref else None


def test_every_error_of_every_operation_is_the_one_error_model(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    ops = operations(doc)
    assert len(ops) >= 29
    for op in ops:
        responses = op.spec["responses"]
        if op.params("path") or op.params("query") or op.body is not None or op.secured:
            assert "422" in responses, str(op)
        if op.secured or op.path.startswith("/v1/carriers/"):
            assert "401" in responses, str(op)
        for status, response in responses.items():
            if int(status) < 400:
                continue
            assert _error_schema(response) == ERROR, (str(op), status)
            example = response["content"]["application/json"]["example"]
            assert ErrorOut.model_validate(example).detail, (str(op), status)
        if op.body is not None:
            assert {"413", "415"} <= set(responses), str(op)
        if op.params("path"):
            assert "404" in responses, str(op)


def test_posting_a_quote_documents_its_refusals(doc: dict[str, Any]) -> None:
    responses = doc["paths"]["/v1/quotes"]["post"]["responses"]
    assert {"401", "415", "422", "429", "503"} <= set(responses)
    assert "Retry-After" in responses["429"]["headers"]
    assert doc["paths"]["/v1/quotes"]["post"]["security"] == [{"ApiKey": []}]
    assert doc["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_answered_errors_are_what_the_document_says(
    app_client: ScanningClient, org_keys: dict[str, str], doc: dict[str, Any]
) -> None:
    """A 422's detail is a string and its problems a list, as documented (FastAPI's default
    document said `detail` was a list)."""
    schema = deref(doc, {"$ref": ERROR})
    assert schema["properties"]["detail"]["type"] == "string"
    answers = [
        app_client.post("/v1/quotes", json={"sex": "F"}, headers=auth(org_keys["acme"])),
        app_client.post("/v1/quotes", json={}),
        app_client.get("/v1/organisations", headers=auth(org_keys["acme"])),
        app_client.get("/v1/orders/nope", headers=auth(org_keys["acme"])),
    ]
    assert [a.status_code for a in answers] == [422, 401, 403, 404]
    for answer in answers:
        error = ErrorOut.model_validate(answer.json())
        assert isinstance(error.detail, str)
    assert answers[0].json()["problems"] == ["sex: Input should be a valid list"]


def test_links_lead_to_documented_operations(doc: dict[str, Any]) -> None:
    """What a quote and an order lead to (clients and the stateful fuzzing follow these)."""
    ids = {op.spec["operationId"] for op in operations(doc)}
    links = {
        name: link
        for op in operations(doc)
        for response in op.spec["responses"].values()
        for name, link in response.get("links", {}).items()
    }
    assert {"OrderIt", "GetQuote", "RecordPayment", "GetReport", "GetDepositInvoice"} <= set(links)
    assert all(link["operationId"] in ids for link in links.values())


def test_a_body_too_large_is_refused_before_it_is_read(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """A body over RENTAL_MAX_BODY_BYTES is a 413 in the error shape, whatever it holds: the
    service never reads a gigabyte into memory to find it invalid."""
    big = b'{"departments": [' + b'"75",' * 300_000 + b'"75"]}'  # 1.5 MB of valid JSON
    headers = {**auth(org_keys["acme"]), "Content-Type": "application/json"}
    declared = app_client.post("/v1/quotes", content=big, headers=headers)
    # Sent in chunks, with no length announced: refused once the limit is passed.
    chunked = app_client.post(
        "/v1/quotes",
        content=iter([big[i : i + 65_536] for i in range(0, len(big), 65_536)]),
        headers=headers,
    )
    for answer in (declared, chunked):
        assert answer.status_code == 413
        error = ErrorOut.model_validate(answer.json())
        assert error.error == "request_entity_too_large"
        assert "at most 1048576 bytes" in error.detail
