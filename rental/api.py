"""Every router of the service, under /v1."""

from __future__ import annotations

from fastapi import APIRouter

from dispatch.endpoints import router as carriers
from kit import http_errors as errors
from rental.endpoints.health import router as health
from rental.endpoints.invoices import router as invoices
from rental.endpoints.orders import router as orders
from rental.endpoints.webhooks import router as webhooks
from reports.endpoints import router as reports
from sales.accounts.endpoints import router as organisations
from sales.messages.endpoints import router as messages
from sales.pricing.endpoints import router as pricing
from sales.quotes.endpoints import router as quotes

router = APIRouter(prefix="/v1")
# Every route needs a key (the carriers': their secret) and may be refused as invalid or when
# the service is busy; each route documents the other statuses it can answer.
for r in (quotes, messages, orders, reports, invoices, organisations, pricing, webhooks):
    router.include_router(r, responses=errors.responses(401, 422, 503))
router.include_router(
    carriers,
    responses=errors.responses(401, 404, 422, 503, not_found="a carrier this service does not use"),
)
router.include_router(health)  # no key: load balancers and probes ask
