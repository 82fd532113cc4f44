"""HTTP: an organisation's webhook endpoints and their delivery log (webhooks/). Mounted here,
in the composition root, because the caller is known through sales' accounts, a layer above
webhooks. A client manages its own organisation's endpoints; account managers anyone's
(`?organisation_id=` to register one)."""

from __future__ import annotations

from fastapi import APIRouter, status

from kit import clock
from kit import http_errors as errors
from sales.accounts.deps import (
    IdPath,
    Limit,
    Offset,
    OrganisationQuery,
    PrincipalDep,
    SessionDep,
)
from sales.accounts.repository import AuditRepository
from sales.accounts.service import get_organisation
from webhooks import service
from webhooks.models import DeliveryStatus, WebhookEndpoint
from webhooks.repository import EndpointRepository, OutboxRepository
from webhooks.schemas import (
    AttemptOut,
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)

router = APIRouter(tags=["webhooks"])
NOT_FOUND = {"not_found": "no such endpoint among your organisation's"}


def _out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        events=endpoint.events,
        status="disabled" if endpoint.disabled_at else "active",
        created_at=endpoint.created_at,
        disabled_at=endpoint.disabled_at,
    )


@router.post(
    "/webhooks",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Register an endpoint: events are POSTed to it, signed (the secret is shown once)",
    responses=errors.responses(404, 415),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": {
                        "url": "https://hooks.example.com/rental",
                        "events": ["order.status_changed", "invoice.issued"],
                        "description": "our CRM",
                    }
                }
            }
        }
    },
)
def create_webhook(
    body: WebhookCreate,
    who: PrincipalDep,
    session: SessionDep,
    organisation_id: OrganisationQuery = None,
) -> WebhookCreated:
    org = service.scope(organisation_id, who.organisation_id, who.is_staff)
    get_organisation(session, org)
    now = clock.now()
    endpoint, secret = service.register(
        session, body, organisation_id=org, user_id=who.user_id, now=now
    )
    AuditRepository(session).record(
        now, who.user_id, org, "webhook.registered", endpoint.id, {"events": endpoint.events}
    )
    return WebhookCreated(**_out(endpoint).model_dump(), secret=secret)


@router.get("/webhooks", response_model=WebhookList, summary="Your organisation's endpoints")
def list_webhooks(
    who: PrincipalDep, session: SessionDep, organisation_id: OrganisationQuery = None
) -> WebhookList:
    found = EndpointRepository(session).of(who.scope(organisation_id))
    return WebhookList(items=[_out(e) for e in found])


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an endpoint: nothing more is sent to it (its delivery log is kept)",
    responses=errors.responses(404, **NOT_FOUND),
)
def delete_webhook(webhook_id: IdPath, who: PrincipalDep, session: SessionDep) -> None:
    now = clock.now()
    endpoint = service.get(session, webhook_id, who.scope())
    service.delete(session, webhook_id, who.scope(), now)
    AuditRepository(session).record(
        now, who.user_id, endpoint.organisation_id, "webhook.deleted", endpoint.id, {}
    )


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="The endpoint's delivery log, newest first: each event and every attempt",
    responses=errors.responses(404, **NOT_FOUND),
)
def list_webhook_deliveries(
    webhook_id: IdPath,
    who: PrincipalDep,
    session: SessionDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DeliveryList:
    endpoint = service.get(session, webhook_id, who.scope())
    items = [
        DeliveryOut(
            id=d.id,
            event_id=d.event_id,
            event_type=event_type,
            status=d.status.value,
            attempts=[
                AttemptOut(
                    number=a.number,
                    at=a.at,
                    status_code=a.status_code,
                    duration_ms=a.duration_ms,
                    error=a.error,
                )
                for a in attempts
            ],
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at if d.status is DeliveryStatus.pending else None,
            finished_at=d.finished_at,
        )
        for d, event_type, attempts in OutboxRepository(session).log(endpoint.id, limit, offset)
    ]
    return DeliveryList(items=items, limit=limit, offset=offset)


@router.post(
    "/webhooks/{webhook_id}/test",
    response_model=DeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a `webhook.test` event to the endpoint (by the workers, within seconds)",
    responses=errors.responses(404, **NOT_FOUND),
)
def send_test_webhook(webhook_id: IdPath, who: PrincipalDep, session: SessionDep) -> DeliveryOut:
    delivery = service.send_test(session, webhook_id, who.scope(), clock.now())
    return DeliveryOut(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type="webhook.test",
        status=delivery.status.value,
        attempts=[],
        created_at=delivery.created_at,
        next_attempt_at=delivery.next_attempt_at,
        finished_at=None,
    )
