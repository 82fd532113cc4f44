"""The service's one error shape, `{"error", "detail", ...}`, and the handlers that render
every failure in it."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from kit import redact
from kit.errors import RentalError


class ErrorResponse(JSONResponse):
    """JSON that can always be sent: a character that cannot be encoded (a lone surrogate
    that came in with a request) becomes '?' instead of failing the response with a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", errors="replace")


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _validation_message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    if err.get("type") == "json_invalid":
        return "the request body is not valid JSON: " + str(err.get("ctx", {}).get("error", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    where = _location(tuple(err.get("loc", ())))
    return redact.redact(f"{where}: {msg}")


async def _rental_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RentalError)  # noqa: S101  (registered for RentalError only)
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry = exc.extra.get("retry_after_seconds")
    if retry:
        headers["Retry-After"] = str(retry)
    body = exc.to_dict()
    body["detail"] = redact.redact(body["detail"])
    return ErrorResponse(body, status_code=exc.status, headers=headers)


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
    problems = [_validation_message(e) for e in errors]
    return ErrorResponse(
        {"error": "invalid_request", "detail": "; ".join(problems), "problems": problems},
        status_code=422,
    )


HTTP_DETAILS = {
    404: "no such path: the API and its paths are described at /docs",
    405: "this method is not allowed on this path: the Allow header lists those that are",
    413: "the request body is too large",
}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
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
    detail = HTTP_DETAILS.get(exc.status_code, status.description or status.phrase)
    return ErrorResponse({"error": code, "detail": detail}, exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Render every failure of `app` in the service's error shape."""
    app.add_exception_handler(RentalError, _rental_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
