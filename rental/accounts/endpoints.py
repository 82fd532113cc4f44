"""HTTP: organisations and their contract terms (account managers)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kit import clock
from rental.accounts import service
from rental.accounts.models import ContentReview
from rental.accounts.repository import AuditRepository
from rental.deps import OrganisationPath, SessionDep, StaffDep

router = APIRouter(tags=["organisations"])


class OrganisationOut(BaseModel):
    id: int
    name: str
    content_review: ContentReview
    refund_deposit_on_cancel: bool


class OrganisationTerms(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_review: ContentReview | None = None
    refund_deposit_on_cancel: bool | None = None


@router.get("/organisations", response_model=list[OrganisationOut])
def list_organisations(who: StaffDep, session: SessionDep) -> list[OrganisationOut]:
    return [
        OrganisationOut.model_validate(o, from_attributes=True)
        for o in service.organisations(session)
    ]


@router.patch("/organisations/{organisation_id}", response_model=OrganisationOut)
def set_terms(
    organisation_id: OrganisationPath, body: OrganisationTerms, who: StaffDep, session: SessionDep
) -> OrganisationOut:
    org = service.set_terms(
        session, organisation_id, body.content_review, body.refund_deposit_on_cancel
    )
    AuditRepository(session).record(
        clock.now(),
        who.user_id,
        org.id,
        "organisation.terms",
        str(org.id),
        body.model_dump(exclude_none=True, mode="json"),
    )
    return OrganisationOut.model_validate(org, from_attributes=True)
