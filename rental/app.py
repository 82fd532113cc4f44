"""FastAPI application factory."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import event

from dispatch.endpoints import stop_router
from kit import http_errors as errors
from kit import logs, redact, tracing
from kit.admission import AdmissionMiddleware, BodyLimitMiddleware, Gate, Route
from kit.errors import RentalError
from kit.metrics import HttpMetrics
from kit.settings import get_settings
from rental import api
from rental import metrics as scrape
from rental.migrations import upgrade
from rental.warmup import WarmUp
from sales.orders.models import Order
from web import session as web_session
from web.routes import router as web_router
from web.security import SecurityHeaders
from web.templating import STATIC

log = logging.getLogger("rental")


def _lifespan(warm: WarmUp | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up: the base loaded and its first eligibility pass made before the server listens,
    rather than on the first quote. `warm`: that load, begun by the caller (`rental serve`,
    after migrating the database) while this app was being imported; without it the
    start-up migrates and loads here."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        redact.install()
        if warm is None:
            upgrade()
        try:
            if warm is not None:
                warm.wait()
            else:
                from segmentation import runtime

                runtime.warm_up()
        except RentalError as exc:
            log.warning("%s", exc.detail)
        yield

    return lifespan


def _trace_orders() -> None:
    """An order placed while tracing keeps its request's trace context (kit/tracing.py): the
    worker's tasks for it, started later by the scheduler, continue that trace."""
    if not event.contains(Order, "after_insert", _remember_order):
        event.listen(Order, "after_insert", _remember_order)


def _remember_order(_mapper: object, _connection: object, order: Order) -> None:
    tracing.remember("order", order.id)


def create_app(warm: WarmUp | None = None) -> FastAPI:
    """The service's app; `warm`: the load of the base already begun (see `_lifespan`)."""
    if tracing.setup("api"):
        _trace_orders()
    app = FastAPI(
        title="Prospect file rental",
        version="1",
        description="Targeted SMS campaigns on a rented opt-in base. Customers never see a "
        "phone number; counts under the minimum segment size are never shown.",
        lifespan=_lifespan(warm),
        openapi_tags=api.TAGS,
    )
    errors.install(app)
    api.install_document(app)
    web_session.install(app)  # the pages' refusals are pages: a redirect, an error page
    app.include_router(api.router)
    app.include_router(scrape.router)  # /metrics for Prometheus (not in the OpenAPI document)
    app.include_router(stop_router)  # /s/{token}: short, outside /v1, in the SMS itself
    app.include_router(web_router)  # the web app: sign-in, segment builder (not in /docs)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    admit = get_settings().admission
    wait = admit.max_wait_seconds
    quotes = Gate("quotes", admit.quote_concurrency, wait)
    reports = Gate("reports", admit.report_concurrency, wait)
    uploads = Gate("uploads", admit.upload_concurrency, wait)
    app.add_middleware(
        AdmissionMiddleware,
        routes=[
            Route("POST", re.compile(r"/v1/quotes"), quotes),
            Route("POST", re.compile(r"/app/segment(/count)?"), quotes),  # the pages' quotes
            # Documents: reports built from the ledger, invoices rendered to HTML or PDF.
            Route("GET", re.compile(r"/v1/orders/[^/]+/report"), reports),
            Route("GET", re.compile(r"/v1/invoices/[^/]+"), reports, re.compile("format=[ph]")),
            # Exclusion files, streamed for up to a minute each.
            Route("POST", re.compile(r"/v1/exclusion-files"), uploads),
            Route("PUT", re.compile(r"/v1/exclusion-files/[^/]+"), uploads),
            Route("POST", re.compile(r"/app/repoussoirs"), uploads),
        ],
        default=Gate("requests", admit.api_concurrency, wait),
        render=errors.render,
        exempt=("/v1/health", "/v1/health/ready", "/metrics"),
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=admit.max_body_bytes,
        render=errors.too_large,
        # Exclusion files, from the API and the marketer's page, are read as a stream.
        uploads=(("/v1/exclusion-files", "/app/repoussoirs"), admit.max_upload_bytes),
    )
    app.add_middleware(HttpMetrics)  # refusals too (route "unmatched": refused before routing)
    # Outermost: every response, refusals included, carries the security headers and the
    # request id, and every log line of the request names it.
    app.add_middleware(SecurityHeaders)
    app.add_middleware(logs.RequestContext)
    tracing.instrument_app(app)  # outermost: the request's span covers all of the above
    return app
