"""The service's one error shape, `{"error", "detail", ...}`: its model, how routes document
it, and the handlers that render every failure in it."""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from kit import redact
from kit.db import transient
from kit.errors import RentalError, ServiceBusy
from kit.settings import get_settings

log = logging.getLogger("rental")


class ErrorResponse(JSONResponse):
    """JSON that can always be sent: a character that cannot be encoded (a lone surrogate
    that came in with a request) becomes '?' instead of failing the response with a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", errors="replace")


class ErrorOut(BaseModel):
    """Every error the API answers, whatever its status. `error` is a stable code for programs,
    `detail` says what was wrong and what to do; some errors add fields (listed here) that a
    program can act on. Nothing the caller typed is ever said back."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="a stable code, e.g. order_not_found, invalid_request")
    detail: str = Field(description="what was wrong and what to do, for people")
    problems: list[str] | None = Field(
        default=None, description="each problem of a request refused as a whole (422, 415)"
    )
    retry_after_seconds: int | None = Field(
        default=None, description="when to try again (429, 503); also the Retry-After header"
    )
    current_status: str | None = Field(
        default=None, description="the order's status, when it does not allow the action (409)"
    )
    formats: list[str] | None = Field(default=None, description="the formats that exist")
    minimum: int | None = Field(default=None, description="the smallest quantity allowed")
    maximum: int | None = Field(default=None, description="the largest quantity allowed")
    earliest: str | None = Field(default=None, description="the earliest send time allowed")
    latest: str | None = Field(default=None, description="the latest send time allowed")
    expired_at: str | None = Field(default=None, description="when the quote expired")
    outstanding_cents: int | None = Field(default=None, description="what is still due")
    invoice: str | None = Field(default=None, description="the number of the invoice concerned")


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}
STATUSES: dict[int, tuple[str, dict[str, Any], dict[str, Any]]] = {
    401: (
        "No API key, or an unknown or revoked one",
        {"error": "invalid_api_key", "detail": "unknown or revoked API key"},
        {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    ),
    403: (
        "Reserved to account managers",
        {"error": "role_required", "detail": "this action is reserved to account managers"},
        {},
    ),
    404: (
        "No such resource in your organisation",
        {"error": "order_not_found", "detail": "no such order in your organisation"},
        {},
    ),
    409: (
        "The resource's state does not allow this now",
        {
            "error": "order_locked",
            "detail": "the order is dispatching: only an order not yet sending can be held",
            "current_status": "dispatching",
        },
        {},
    ),
    413: (
        "The body is larger than the service takes",
        {
            "error": "request_entity_too_large",
            "detail": "the request body is too large: at most 1048576 bytes",
        },
        {},
    ),
    415: (
        "The body was not sent as JSON",
        {
            "error": "unsupported_media_type",
            "detail": "the request body must be JSON: send it with "
            "'Content-Type: application/json'",
            "problems": [
                "the request body must be JSON: send it with 'Content-Type: application/json'"
            ],
        },
        {},
    ),
    422: (
        "The request is not valid: `problems` lists what is wrong",
        {
            "error": "invalid_request",
            "detail": "quantity: Input should be greater than or equal to 0; sender: Field "
            "required",
            "problems": [
                "quantity: Input should be greater than or equal to 0",
                "sender: Field required",
            ],
        },
        {},
    ),
    429: (
        "A quota is spent: try again after Retry-After seconds",
        {
            "error": "quote_budget_exhausted",
            "detail": "daily quote budget of 500 quotes reached for your organisation; it "
            "resets at Fri 04 Dec 2026 at 00:00 (Paris time) (midnight). Ask your account "
            "manager if you need more.",
            "retry_after_seconds": 3600,
        },
        _RETRY_AFTER,
    ),
    503: (
        "The service cannot answer now (busy, or not set up): try again later",
        {
            "error": "busy",
            "detail": "the service is busy (quotes): the request was not started; retry in 1 s",
            "retry_after_seconds": 1,
        },
        _RETRY_AFTER,
    ),
}


def responses(*statuses: int, **notes: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route or router for these error statuses, all with the one error
    model and an example; `notes` (e.g. `conflict="..."`) say more about one status, named as
    in http.HTTPStatus (lower case)."""
    out: dict[int | str, dict[str, Any]] = {}
    if 415 in statuses:  # a route that takes a body: it may also be too large
        statuses = (413, *statuses)
    for status in statuses:
        description, example, headers = STATUSES[status]
        note = notes.get(HTTPStatus(status).name.lower())
        out[status] = {
            "model": ErrorOut,
            "description": f"{description} ({note})" if note else description,
            "content": {"application/json": {"example": example}},
        }
        if headers:
            out[status]["headers"] = headers
    return out


class _Document:
    """The names the API document defines (fields, parameters, enumerated keys): a location
    in an error message says only these, never a key or field name the caller made up."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        names: set[str] = {"body", "query", "path", "header", "cookie"}

        def collect(node: Any) -> None:
            if isinstance(node, dict):
                names.update(node.get("properties") or {})
                names.update((node.get("propertyNames") or {}).get("enum") or [])
                if node.get("in") in ("query", "path", "header", "cookie"):
                    names.add(str(node.get("name")))
                for value in node.values():
                    collect(value)
            elif isinstance(node, list):
                for value in node:
                    collect(value)

        collect(doc)
        self.names = frozenset(names)
        # Path templates as patterns, the most literal first: /orders/export before /orders/{id}.
        self.paths = sorted(
            (
                (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(p)) + "$"), p)
                for p in doc.get("paths", {})
            ),
            key=lambda pair: pair[1].count("{"),
        )

    def location(self, loc: tuple[Any, ...]) -> str:
        parts = []
        for i, part in enumerate(loc):
            if isinstance(part, int):
                parts.append(str(part))
            elif (part == "body" and i == 0) or part == "[key]":
                continue
            else:
                parts.append(part if part in self.names else "<key>")
        return ".".join(parts) or "body"

    def template(self, request: Request) -> str:
        """The documented path template that `request`'s path matches ('' when none does)."""
        return next((p for rx, p in self.paths if rx.match(request.url.path)), "")

    def methods(self, request: Request) -> list[str]:
        """The methods documented for `request`'s path."""
        item = self.doc["paths"].get(self.template(request), {})
        return sorted(m.upper() for m in item if m in ("get", "put", "post", "delete", "patch"))

    def fields_at(self, request: Request, loc: tuple[Any, ...]) -> list[str]:
        """The fields the request body may hold at `loc` (empty when unknown)."""
        op = self.doc["paths"].get(self.template(request), {}).get(request.method.lower(), {})
        node = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        node = node.get("schema")
        for part in loc[1:]:
            node = self._shape(node, "array" if isinstance(part, int) else "object")
            if node is None:
                return []
            if isinstance(part, int):
                node = node.get("items")
            elif part in node.get("properties", {}):
                node = node["properties"][part]
            else:
                node = node.get("additionalProperties")
        node = self._shape(node, "object")
        return sorted(node.get("properties", {})) if node else []

    def _shape(self, node: Any, kind: str) -> dict[str, Any] | None:
        """`node` itself, or the alternative of its anyOf, that is an object or an array."""
        while isinstance(node, dict) and "$ref" in node:
            node = self.doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        if not isinstance(node, dict):
            return None
        for alt in node.get("anyOf") or node.get("oneOf") or []:
            found = self._shape(alt, kind)
            if found is not None:
                return found
        is_kind = node.get("type") == kind or (kind == "object" and "properties" in node)
        return node if is_kind else None


def _document(request: Request) -> _Document:
    found = getattr(request.app.state, "error_document", None)
    if found is None:
        found = request.app.state.error_document = _Document(request.app.openapi())
    assert isinstance(found, _Document)  # noqa: S101
    return found


def _validation_message(request: Request, err: dict[str, Any]) -> str:
    """A validation error in words: where (only names the API defines) and what is wrong
    (pydantic's message or ours), never the value that was sent."""
    if err.get("type") == "json_invalid":
        return "the request body is not valid JSON: " + str(err.get("ctx", {}).get("error", ""))
    doc = _document(request)
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "extra_forbidden":
        fields = doc.fields_at(request, loc[:-1])
        allowed = f"allowed: {', '.join(fields)}" if fields else "see the API document at /docs"
        return f"{doc.location(loc[:-1])}: unknown field; {allowed}"
    msg = str(err.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return redact.redact(f"{doc.location(loc)}: {msg}")


def render(exc: RentalError) -> JSONResponse:
    """A domain error as the API answers it (also used where no request handler runs: the
    admission middleware's 503)."""
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry = exc.extra.get("retry_after_seconds")
    if retry:
        headers["Retry-After"] = str(retry)
    body = exc.to_dict()
    body["detail"] = redact.redact(body["detail"])
    return ErrorResponse(body, status_code=exc.status, headers=headers)


async def _rental_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RentalError)  # noqa: S101  (registered for RentalError only)
    return render(exc)


async def _database_busy(_: Request, exc: Exception) -> JSONResponse:
    """No connection free within the pool's timeout, or the database's lock held past its
    busy timeout: the request did not happen, the caller may retry (503, not 500)."""
    if isinstance(exc, OperationalError) and not transient(exc):
        raise exc
    log.warning("database saturated: %s", type(exc).__name__)
    return render(
        ServiceBusy("the service is busy (database): retry in 2 s", retry_after_seconds=2)
    )


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind.startswith("application/") and (
        kind == "application/json" or kind.endswith("+json")
    )


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return bool(length and length.strip() != "0") or "transfer-encoding" in request.headers


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = exc.errors()
    if _has_body(request) and not _is_json(request) and any(e["loc"] == ("body",) for e in errors):
        # A body was sent, but not as JSON: it was never read.
        detail = "the request body must be JSON: send it with 'Content-Type: application/json'"
        return ErrorResponse(
            {"error": "unsupported_media_type", "detail": detail, "problems": [detail]},
            status_code=415,
        )
    # The input is never echoed back: pydantic's "input" field could carry what was typed.
    problems = [_validation_message(request, e) for e in errors]
    return ErrorResponse(
        {"error": "invalid_request", "detail": "; ".join(problems), "problems": problems},
        status_code=422,
    )


HTTP_DETAILS = {
    404: "no such path: the API and its paths are described at /docs",
    405: "this method is not allowed on this path: the Allow header lists those that are",
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's and FastAPI's own failures (no such path, a body that cannot be read) in
    the service's error shape."""
    assert isinstance(exc, HTTPException)  # noqa: S101
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI could not read the body: not UTF-8 (json.loads refuses other encodings).
        detail = "the request body could not be read: send JSON encoded in UTF-8"
        return ErrorResponse(
            {"error": "invalid_request", "detail": detail, "problems": [detail]}, status_code=422
        )
    status = HTTPStatus(exc.status_code)
    code = status.phrase.lower().replace(" ", "_").replace("-", "_")
    if exc.status_code == 413:
        return too_large(int(exc.detail) if str(exc.detail).isdigit() else None)
    detail = HTTP_DETAILS.get(exc.status_code, status.description or status.phrase)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette lists the methods of the first route that matched the path only.
        methods = _document(request).methods(request)
        headers["Allow"] = ", ".join(methods) if methods else headers.get("Allow", "")
    return ErrorResponse({"error": code, "detail": detail}, exc.status_code, headers=headers)


def too_large(limit: int | None = None) -> JSONResponse:
    """A request body over its route's limit (kit.admission.BodyLimitMiddleware):
    RENTAL_MAX_BODY_BYTES, or RENTAL_MAX_UPLOAD_BYTES on the upload routes."""
    bytes_ = limit if limit is not None else get_settings().admission.max_body_bytes
    detail = f"the request body is too large: at most {bytes_} bytes"
    return ErrorResponse({"error": "request_entity_too_large", "detail": detail}, 413)


def install(app: FastAPI) -> None:
    """Render every failure of `app` in the service's error shape."""
    app.add_exception_handler(RentalError, _rental_error)
    app.add_exception_handler(PoolTimeout, _database_busy)
    app.add_exception_handler(OperationalError, _database_busy)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
