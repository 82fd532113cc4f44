"""The service's one error shape, `{"error", "detail", ...}`, and the handlers that render
every failure in it."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    # The input is never echoed back: pydantic's "input" field could carry what was typed.
    problems = [_validation_message(e) for e in exc.errors()]
    return ErrorResponse(
        {"error": "invalid_request", "detail": "; ".join(problems), "problems": problems},
        status_code=422,
    )


def install(app: FastAPI) -> None:
    """Render every failure of `app` in the service's error shape."""
    app.add_exception_handler(RentalError, _rental_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
