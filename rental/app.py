"""FastAPI application factory and the one error handler."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dispatch.endpoints import stop_router
from kit import redact
from kit.admission import AdmissionMiddleware, Gate, Route
from kit.db import transient
from kit.errors import RentalError, ServiceBusy
from kit.settings import get_settings
from rental import api
from rental.migrations import upgrade

log = logging.getLogger("rental")


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
    return _error_response(exc)


def _error_response(exc: RentalError) -> JSONResponse:
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry = exc.extra.get("retry_after_seconds")
    if retry:
        headers["Retry-After"] = str(retry)
    body = exc.to_dict()
    body["detail"] = redact.redact(body["detail"])
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _database_busy(_: Request, exc: Exception) -> JSONResponse:
    """No connection free within the pool's timeout, or the database's lock held past its
    busy timeout: the request did not happen, the caller may retry (503, not 500)."""
    if isinstance(exc, OperationalError) and not transient(exc):
        raise exc
    log.warning("database saturated: %s", type(exc).__name__)
    return _error_response(
        ServiceBusy("the service is busy (database): retry in 2 s", retry_after_seconds=2)
    )


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    # The input is never echoed back: pydantic's "input" field could carry what was typed.
    problems = [_validation_message(e) for e in exc.errors()]
    return JSONResponse(
        {"error": "invalid_request", "detail": "; ".join(problems), "problems": problems},
        status_code=422,
    )


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    redact.install()
    upgrade()
    try:  # load the base now rather than on the first quote
        from segmentation import runtime

        runtime.warm_up()
    except RentalError as exc:
        log.warning("%s", exc.detail)
    yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="Prospect file rental",
        version="1",
        description="Targeted SMS campaigns on a rented opt-in base. Customers never see a "
        "phone number; counts under the minimum segment size are never shown.",
        lifespan=_lifespan,
    )
    app.add_exception_handler(RentalError, _rental_error)
    app.add_exception_handler(PoolTimeout, _database_busy)
    app.add_exception_handler(OperationalError, _database_busy)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(api.router)
    app.include_router(stop_router)  # /s/{token}: short, outside /v1, in the SMS itself
    s = get_settings()
    wait = s.admission_max_wait_seconds
    quotes = Gate("quotes", s.quote_concurrency, wait)
    reports = Gate("reports", s.report_concurrency, wait)
    app.add_middleware(
        AdmissionMiddleware,
        routes=[
            Route("POST", re.compile(r"/v1/quotes"), quotes),
            # Documents: reports built from the ledger, invoices rendered to HTML or PDF.
            Route("GET", re.compile(r"/v1/orders/[^/]+/report"), reports),
            Route("GET", re.compile(r"/v1/invoices/[^/]+"), reports, re.compile("format=[ph]")),
        ],
        default=Gate("requests", s.api_concurrency, wait),
        render=_error_response,
        exempt=("/v1/health",),
    )
    return app
