"""Every router of the service, under /v1."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dispatch.endpoints import router as carriers
from kit import clock
from rental.accounts.endpoints import router as organisations
from rental.invoices.endpoints import router as invoices
from rental.messages.endpoints import router as messages
from rental.orders.endpoints import router as orders
from rental.pricing.endpoints import router as pricing
from rental.quotes.endpoints import router as quotes
from reports.endpoints import router as reports

router = APIRouter(prefix="/v1")
for r in (quotes, messages, orders, reports, invoices, organisations, pricing, carriers):
    router.include_router(r)


class Health(BaseModel):
    status: str = "ok"
    now: str = Field(description="the service's clock (a demo may start it at another instant)")


@router.get("/health", response_model=Health, summary="The service is up, and its time")
def health() -> Health:
    return Health(now=clock.now().isoformat())
