"""HTTP: the criteria catalogue and quotes. Parse, call the service, return."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status

from rental.deps import IdPath, PrincipalDep, SessionDep
from rental.idempotency.guard import Idempotent, IdempotentRoute
from rental.quotes import flows, service
from rental.quotes.schemas import QuoteOut, QuoteStaffOut
from segmentation import criteria as catalogue
from segmentation import runtime
from segmentation.criteria import Criteria

router = APIRouter(tags=["quotes"], route_class=IdempotentRoute)


@router.get("/criteria", summary="Catalogue of targeting criteria and their allowed values")
def get_criteria(_: PrincipalDep) -> dict[str, Any]:
    return catalogue.catalogue()


@router.get("/criteria/communes", summary="Find communes by name, INSEE code or postcode")
def search_communes(
    _: PrincipalDep, search: str = Query(min_length=2, max_length=60)
) -> list[dict[str, Any]]:
    return catalogue.search_communes(search)


@router.post(
    "/quotes",
    status_code=status.HTTP_201_CREATED,
    response_model=QuoteStaffOut | QuoteOut,
    summary="Count and price a segment",
    dependencies=[Idempotent],
)
def create_quote(
    criteria: Criteria,
    who: PrincipalDep,
    breakdowns: str | None = Query(
        default=None,
        description="Comma-separated breakdowns among region, department, age_band, sex, csp, "
        "or 'all' (default: region,department)",
    ),
) -> QuoteOut:
    dims = service.parse_breakdowns(breakdowns)
    return flows.quote(who, criteria, runtime.current(), dims)


@router.get("/quotes/{quote_id}", response_model=QuoteStaffOut | QuoteOut)
def get_quote(quote_id: IdPath, who: PrincipalDep, session: SessionDep) -> QuoteOut:
    return service.view(service.get_quote(session, who, quote_id), who)
