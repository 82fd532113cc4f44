"""HTTP: contract price grids (set by account managers; a client reads its own)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel

from kit import clock
from kit import http_errors as errors
from sales.accounts.deps import OrganisationPath, PrincipalDep, SessionDep, StaffDep
from sales.accounts.repository import AuditRepository
from sales.accounts.service import get_organisation
from sales.pricing import service
from sales.pricing.exceptions import GridNotFound
from sales.pricing.repository import ContractGridRepository
from sales.pricing.schemas import PriceGrid

router = APIRouter(tags=["pricing"])


class GridOut(BaseModel):
    organisation_id: int
    contract: bool  # false: the default grid applies
    grid: PriceGrid
    version: int | None
    set_at: datetime | None


@router.get(
    "/organisations/{organisation_id}/price-grid",
    response_model=GridOut,
    responses=errors.responses(404),
)
def get_price_grid(
    organisation_id: OrganisationPath, who: PrincipalDep, session: SessionDep
) -> GridOut:
    if not who.is_staff and organisation_id != who.organisation_id:
        raise GridNotFound("no such organisation among yours")
    get_organisation(session, organisation_id)
    row = ContractGridRepository(session).get(organisation_id)
    return GridOut(
        organisation_id=organisation_id,
        contract=row is not None,
        grid=service.grid_for(session, organisation_id),
        version=row.version if row else None,
        set_at=row.set_at if row else None,
    )


@router.put(
    "/organisations/{organisation_id}/price-grid",
    response_model=GridOut,
    responses=errors.responses(403, 404, 415),
    operation_id="set_price_grid",  # the staff pages call put_grid by name (web/staff)
)
def put_grid(
    organisation_id: OrganisationPath, grid: PriceGrid, who: StaffDep, session: SessionDep
) -> GridOut:
    get_organisation(session, organisation_id)
    row = service.set_contract_grid(session, who, organisation_id, grid)
    AuditRepository(session).record(
        clock.now(),
        who.user_id,
        organisation_id,
        "price_grid.set",
        str(organisation_id),
        {"version": row.version, "grid": grid.model_dump(mode="json")},
    )
    return GridOut(
        organisation_id=organisation_id,
        contract=True,
        grid=grid,
        version=row.version,
        set_at=row.set_at,
    )


@router.delete(
    "/organisations/{organisation_id}/price-grid",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors.responses(403, 404),
    operation_id="delete_price_grid",  # the staff pages call delete_grid by name (web/staff)
)
def delete_grid(organisation_id: OrganisationPath, who: StaffDep, session: SessionDep) -> None:
    get_organisation(session, organisation_id)
    if not service.clear_contract_grid(session, organisation_id):
        raise GridNotFound("this organisation has no contract grid: the default grid applies")
    AuditRepository(session).record(
        clock.now(), who.user_id, organisation_id, "price_grid.clear", str(organisation_id), {}
    )
