"""Every router of the service, under /v1."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from dispatch.endpoints import router as carriers
from kit import http_errors as errors
from rental.endpoints.health import router as health
from rental.endpoints.invoices import router as invoices
from rental.endpoints.orders import router as orders
from rental.endpoints.webhooks import router as webhooks
from reports.endpoints import router as reports
from sales.accounts.endpoints import router as organisations
from sales.exclusions.endpoints import router as exclusions
from sales.messages.endpoints import router as messages
from sales.pricing.endpoints import router as pricing
from sales.quotes.endpoints import router as quotes
from subjects.endpoints import router as rights


def operation_id(route: APIRoute) -> str:
    """An operation's id is its endpoint function's name (create_quote, get_order): what a
    generated client names its method, so every endpoint's name is a verb and a noun."""
    return route.name


# The document's sections, in this order, each with what it is for.
TAGS: list[dict[str, Any]] = [
    {"name": "quotes", "description": "The criteria catalogue; count and price a segment."},
    {"name": "orders", "description": "Order a quote's segment, then follow, revise or cancel."},
    {
        "name": "exclusions",
        "description": "Exclusion files: your own customers, left out of counts and sends.",
    },
    {"name": "messages", "description": "Check a draft message: encoding, characters, segments."},
    {"name": "invoices", "description": "Deposit, balance and credit-note invoices (Factur-X)."},
    {"name": "reports", "description": "The send report of an order."},
    {"name": "webhooks", "description": "Endpoints that receive signed events (docs/webhooks.md)."},
    {"name": "organisations", "description": "Organisations and their terms (account managers)."},
    {"name": "pricing", "description": "An organisation's price grid."},
    {"name": "audit", "description": "Quotes flagged as attack-like (account managers)."},
    {
        "name": "carriers",
        "description": "Receipts and replies from the carriers, with their own secret; their "
        "state (account managers).",
    },
    {
        "name": "rights",
        "description": "A person's rights over their record (a one-time code by SMS, no key); "
        "the staff queue of their requests (account managers).",
    },
    {"name": "health", "description": "Liveness and readiness, without a key."},
]

router = APIRouter(prefix="/v1", generate_unique_id_function=operation_id)


def install_document(app: FastAPI) -> None:
    """`app`'s OpenAPI document, made for client generators: a model whose input and output
    schemas differ (PriceGrid-Input, PriceGrid-Output) gets a title per schema, else the
    generators, which name classes by title, see two classes of one name and drop one."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        doc = default()
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            if name.endswith(("-Input", "-Output")):
                schema["title"] = name.replace("-", "")
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


# Every route needs a key (the carriers': their secret) and may be refused as invalid or when
# the service is busy; each route documents the other statuses it can answer.
for r in (
    quotes,
    exclusions,
    messages,
    orders,
    reports,
    invoices,
    organisations,
    pricing,
    webhooks,
):
    router.include_router(r, responses=errors.responses(401, 422, 503))
router.include_router(
    carriers,
    responses=errors.responses(401, 404, 422, 503, not_found="a carrier this service does not use"),
)
router.include_router(rights, responses=errors.responses(422, 503))
router.include_router(health)  # no key: load balancers and probes ask
