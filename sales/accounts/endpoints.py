"""HTTP: organisations and their contract terms (account managers)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from kit import clock
from kit import http_errors as errors
from kit.fields import Flag
from kit.text import SafeText
from sales.accounts import service
from sales.accounts.deps import OrganisationPath, SessionDep, StaffDep
from sales.accounts.models import ContentReview
from sales.accounts.repository import AuditRepository

router = APIRouter(tags=["organisations"])


class OrganisationOut(BaseModel):
    id: int
    name: str
    content_review: ContentReview
    refund_deposit_on_cancel: bool
    billing_address: str | None = None
    vat_number: str | None = None
    siren: str | None = None


class OrganisationTerms(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "content_review": "auto",
                    "billing_address": "12 rue de la Paix, 75002 Paris",
                    "vat_number": "FR12345678901",
                    "siren": "123456789",
                }
            ]
        },
    )

    content_review: ContentReview | None = None
    refund_deposit_on_cancel: Flag | None = None
    billing_address: SafeText | None = Field(
        default=None, min_length=5, max_length=300, description="as printed on invoices"
    )
    vat_number: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}[0-9A-Z]{2,13}$", description="e.g. FR + 11 characters"
    )
    siren: str | None = Field(default=None, pattern=r"^[0-9]{9}$", description="9 digits")


@router.get("/organisations", response_model=list[OrganisationOut], responses=errors.responses(403))
def list_organisations(who: StaffDep, session: SessionDep) -> list[OrganisationOut]:
    return [
        OrganisationOut.model_validate(o, from_attributes=True)
        for o in service.organisations(session)
    ]


@router.patch(
    "/organisations/{organisation_id}",
    response_model=OrganisationOut,
    responses=errors.responses(403, 404, 415),
    operation_id="set_organisation_terms",  # the staff pages call set_terms by name (web/staff)
)
def set_terms(
    organisation_id: OrganisationPath, body: OrganisationTerms, who: StaffDep, session: SessionDep
) -> OrganisationOut:
    org = service.set_terms(
        session,
        organisation_id,
        body.content_review,
        body.refund_deposit_on_cancel,
        billing=body.model_dump(include={"billing_address", "vat_number", "siren"}),
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
