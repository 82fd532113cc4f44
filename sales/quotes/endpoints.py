"""HTTP: the criteria catalogue, quotes and their audit. Parse, call the service, return."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import AfterValidator, BeforeValidator

from kit import clock
from kit import http_errors as errors
from kit.text import SafeText
from sales.accounts.deps import (
    IdPath,
    Limit,
    Offset,
    OrganisationQuery,
    PrincipalDep,
    SessionDep,
    StaffDep,
)
from sales.idempotency.guard import Idempotent, IdempotentRoute
from sales.quotes import audit, flows, service
from sales.quotes.schemas import QuoteAuditList, QuoteOut, QuoteStaffOut
from segmentation import criteria as catalogue
from segmentation import runtime
from segmentation.criteria import Criteria
from segmentation.engine import DIMENSIONS

router = APIRouter(tags=["quotes"], route_class=IdempotentRoute)
_ONE = "(" + "|".join(DIMENSIONS) + ")"
BREAKDOWNS = f"^(all|{_ONE}(,{_ONE})*)$"
ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")
EARLIEST = datetime(clock.FIRST_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(clock.LAST_YEAR, 12, 31, tzinfo=UTC)


def _iso(value: object) -> object:
    # A query parameter is text: pydantic would read "0.5" as a Unix time.
    if isinstance(value, str) and not ISO_DAY.match(value):
        raise ValueError("must be an ISO 8601 instant, e.g. 2027-01-12T10:00+01:00")
    return value


def _within_years(at: datetime) -> datetime:
    """A bound of a filter, in UTC: Paris time without an offset; before or after the years
    the service knows, the first or last of them (all of a list, or none of it)."""
    at = at.replace(tzinfo=clock.PARIS) if at.tzinfo is None else at
    utc = clock.to_utc(at)
    if utc is None:  # beyond what datetime holds once moved to UTC
        return EARLIEST if at.year < clock.FIRST_YEAR else LATEST
    return min(max(utc, EARLIEST), LATEST)


Since = Annotated[datetime, BeforeValidator(_iso), AfterValidator(_within_years)]


@router.get("/criteria", summary="Catalogue of targeting criteria and their allowed values")
def get_criteria(_: PrincipalDep) -> dict[str, Any]:
    return catalogue.catalogue()


@router.get("/criteria/communes", summary="Find communes by name, INSEE code or postcode")
def search_communes(
    _: PrincipalDep, search: Annotated[SafeText, Query(min_length=2, max_length=60)]
) -> list[dict[str, Any]]:
    return catalogue.search_communes(search)


@router.post(
    "/quotes",
    status_code=status.HTTP_201_CREATED,
    response_model=QuoteStaffOut | QuoteOut,
    summary="Count and price a segment",
    dependencies=[Idempotent],
    responses={
        201: {
            "links": {
                "GetQuote": {
                    "operationId": "get_quote",
                    "parameters": {"quote_id": "$response.body#/id"},
                },
                "OrderIt": {
                    "operationId": "create_order",
                    "requestBody": {"quote_id": "$response.body#/id"},
                    "description": "order a quantity of the quote's segment",
                },
            }
        },
        **errors.responses(
            404,
            409,
            415,
            429,
            not_found="an exclusion file of another organisation, or none",
            conflict="an exclusion file still being matched with the base",
            too_many_requests="the organisation's daily quote budget is spent",
        ),
    },
)
def create_quote(
    criteria: Criteria,
    who: PrincipalDep,
    breakdowns: Annotated[
        str | None,
        Query(
            pattern=BREAKDOWNS,
            description="Comma-separated breakdowns among region, department, age_band, sex, "
            "csp, or 'all' (default: region,department)",
        ),
    ] = None,
) -> QuoteOut:
    dims = service.parse_breakdowns(breakdowns)
    return flows.quote(who, criteria, runtime.current(), dims)


@router.get(
    "/quotes/{quote_id}", response_model=QuoteStaffOut | QuoteOut, responses=errors.responses(404)
)
def get_quote(quote_id: IdPath, who: PrincipalDep, session: SessionDep) -> QuoteOut:
    return service.view(service.get_quote(session, who, quote_id), who)


@router.get(
    "/audit/quotes",
    tags=["audit"],
    response_model=QuoteAuditList,
    summary="Quotes flagged as attack-like (account managers): pairs of segments differing "
    "by fewer than the minimum segment size, newest first, with flags per organisation",
    responses=errors.responses(403),
)
def list_flagged_quotes(
    _: StaffDep,
    session: SessionDep,
    organisation_id: OrganisationQuery = None,
    since: Annotated[
        Since | None,
        Query(
            description="flagged quotes asked at or after this instant (ISO 8601; Paris "
            "time without an offset)"
        ),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> QuoteAuditList:
    return audit.flagged(session, organisation_id, since, limit, offset, clock.now())
