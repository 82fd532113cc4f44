"""The OpenAPI document describes the API as it answers: one error model on every route, with
the statuses each can answer; integrators generate their clients from it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kit.http_errors import ErrorOut
from kit.settings import get_settings
from tests.conftest import ScanningClient, auth
from tests.openapi_cases import deref, operations, options

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


def _declared_and_chunked(
    client: TestClient, path: str, body: bytes, headers: dict[str, str]
) -> tuple[Any, Any]:
    """The body sent with its length, then in chunks with no length announced (refused once
    the limit is passed)."""
    declared = client.post(path, content=body, headers=headers)
    chunks = iter([body[i : i + 65_536] for i in range(0, len(body), 65_536)])
    return declared, client.post(path, content=chunks, headers=headers)


def test_a_body_too_large_is_refused_before_it_is_read(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """A body over RENTAL_MAX_BODY_BYTES is a 413 in the error shape, whatever it holds: the
    service never reads a gigabyte into memory to find it invalid."""
    big = b'{"departments": [' + b'"75",' * 300_000 + b'"75"]}'  # 1.5 MB of valid JSON
    headers = {**auth(org_keys["acme"]), "Content-Type": "application/json"}
    for answer in _declared_and_chunked(app_client, "/v1/quotes", big, headers):
        assert answer.status_code == 413
        error = ErrorOut.model_validate(answer.json())
        assert error.error == "request_entity_too_large"
        assert "at most 1048576 bytes" in error.detail


def test_an_upload_over_its_own_limit_quotes_that_limit(
    org_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exclusion files have a limit of their own (RENTAL_MAX_UPLOAD_BYTES): the 413 says
    that one, not the 1 MiB of other bodies."""
    from rental.app import create_app

    monkeypatch.setenv("RENTAL_MAX_UPLOAD_BYTES", "2000000")
    get_settings.cache_clear()
    try:
        client = TestClient(create_app())
        big = b"0" * 2_000_100
        headers = {**auth(org_keys["acme"]), "Content-Type": "text/plain"}
        answers = _declared_and_chunked(client, "/v1/exclusion-files", big, headers)
    finally:
        monkeypatch.delenv("RENTAL_MAX_UPLOAD_BYTES")
        get_settings.cache_clear()
    for answer in answers:
        assert answer.status_code == 413
        assert "at most 2000000 bytes" in answer.json()["detail"]


def test_operations_have_readable_unique_ids(doc: dict[str, Any]) -> None:
    """A generated client names its methods by operation id: create_quote, get_order."""
    ids = [op.spec["operationId"] for op in operations(doc)]
    assert len(ids) == len(set(ids))
    for op_id in ids:
        assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", op_id), op_id
        assert "_v1_" not in op_id, op_id
        assert not op_id.endswith(("_get", "_post", "_put", "_patch", "_delete")), op_id
    assert {"create_quote", "get_quote", "create_order", "get_order", "list_invoices"} <= set(ids)


def test_every_operation_says_how_it_is_authenticated(doc: dict[str, Any]) -> None:
    """The API key is a bearer scheme on every operation; the carriers send their own secret;
    the health checks and the one-time codes of the rights pages take none, and say so."""
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "http", "scheme": "bearer"}
    assert schemes["CarrierSecret"]["in"] == "header"
    for op in operations(doc):
        assert "security" in op.spec, str(op)
        if op.path.startswith(("/v1/health", "/v1/rights/codes")):
            assert op.spec["security"] == [], str(op)
        elif op.path in ("/v1/rights/record", "/v1/rights/objection", "/v1/rights/erasure") or (
            op.path == "/v1/rights/requests" and op.method == "post"
        ):  # a person, with the access a verified code gave
            assert op.spec["security"] == [{"RightsAccess": []}], str(op)
        elif op.path.startswith("/v1/carriers/{carrier}/"):
            assert op.spec["security"] == [{"CarrierSecret": []}], str(op)
        else:
            assert op.spec["security"] == [{"ApiKey": []}], str(op)


def test_operations_are_tagged_and_bodies_have_examples(doc: dict[str, Any]) -> None:
    described = {tag["name"] for tag in doc["tags"] if tag.get("description")}
    for op in operations(doc):
        assert op.spec.get("tags"), str(op)
        assert set(op.spec["tags"]) <= described, str(op)
        if op.body is not None:
            media = op.spec["requestBody"]["content"]["application/json"]
            schema = next(iter(options(doc, op.body.get("items", op.body))))
            assert media.get("example") or schema.get("examples"), str(op)


def test_input_and_output_schemas_of_one_model_have_distinct_titles(
    doc: dict[str, Any],
) -> None:
    """Client generators name a class by a schema's title: two schemas of one title lose one."""
    titles = [s.get("title", name) for name, s in doc["components"]["schemas"].items()]
    assert len(titles) == len(set(titles))
