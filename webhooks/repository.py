"""All SQL of webhooks: endpoints, the outbox of events, deliveries and their attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kit.text import is_id
from webhooks.events import TEST_EVENT
from webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)


class EndpointRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        self.session.add(endpoint)
        self.session.flush()
        return endpoint

    def get(self, endpoint_id: str, organisation_id: int | None) -> WebhookEndpoint | None:
        """A registered endpoint (not deleted), of that organisation unless None (staff)."""
        if not is_id(endpoint_id):
            return None
        q = select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.deleted_at.is_(None)
        )
        if organisation_id is not None:
            q = q.where(WebhookEndpoint.organisation_id == organisation_id)
        return self.session.scalar(q)

    def of(self, organisation_id: int | None) -> list[WebhookEndpoint]:
        q = select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None))
        if organisation_id is not None:
            q = q.where(WebhookEndpoint.organisation_id == organisation_id)
        return list(self.session.scalars(q.order_by(WebhookEndpoint.created_at)))

    def active(self, organisation_id: int) -> list[WebhookEndpoint]:
        """The endpoints that receive events now (registered, not disabled)."""
        q = select(WebhookEndpoint).where(
            WebhookEndpoint.organisation_id == organisation_id,
            WebhookEndpoint.deleted_at.is_(None),
            WebhookEndpoint.disabled_at.is_(None),
        )
        return list(self.session.scalars(q))


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def keyed(self, key: str) -> bool:
        """Was an event with this key written already?"""
        return (
            self.session.scalar(select(WebhookEvent.id).where(WebhookEvent.key == key)) is not None
        )

    def add(self, event: WebhookEvent, endpoint_ids: Sequence[str]) -> list[WebhookDelivery]:
        self.session.add(event)
        self.session.flush()  # before its deliveries, which refer to it
        deliveries = [
            WebhookDelivery(
                event_id=event.id,
                endpoint_id=endpoint_id,
                status=DeliveryStatus.pending,
                attempts=0,
                created_at=event.occurred_at,
                next_attempt_at=event.occurred_at,
            )
            for endpoint_id in endpoint_ids
        ]
        self.session.add_all(deliveries)
        self.session.flush()
        return deliveries

    def due(self, now: datetime, limit: int) -> list[tuple[int, int, datetime]]:
        """(id, attempts, next attempt) of pending deliveries due now, to endpoints that still
        receive them (a disabled endpoint still gets a test event), oldest first."""
        q = (
            select(WebhookDelivery.id, WebhookDelivery.attempts, WebhookDelivery.next_attempt_at)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.pending,
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.deleted_at.is_(None),
                (WebhookEndpoint.disabled_at.is_(None)) | (WebhookEvent.type == TEST_EVENT),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        return [(r[0], r[1], r[2]) for r in self.session.execute(q)]

    def claim(self, delivery_id: int, seen_attempts: int, lease_until: datetime) -> bool:
        """Compare-and-set: this attempt is ours only if nobody took it since we read it. The
        lease brings it back if the worker dies during the attempt."""
        result = self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == DeliveryStatus.pending,
                WebhookDelivery.attempts == seen_attempts,
            )
            .values(attempts=seen_attempts + 1, next_attempt_at=lease_until)
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1

    def delivery(
        self, delivery_id: int
    ) -> tuple[WebhookDelivery, WebhookEvent, WebhookEndpoint] | None:
        q = (
            select(WebhookDelivery, WebhookEvent, WebhookEndpoint)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == delivery_id)
            .execution_options(populate_existing=True)
        )
        row = self.session.execute(q).first()
        return (row[0], row[1], row[2]) if row else None

    def add_attempt(self, attempt: WebhookAttempt) -> None:
        self.session.add(attempt)
        self.session.flush()

    def log(
        self, endpoint_id: str, limit: int, offset: int
    ) -> list[tuple[WebhookDelivery, str, list[WebhookAttempt]]]:
        """An endpoint's deliveries, newest first, each with its event type and attempts."""
        q = (
            select(WebhookDelivery, WebhookEvent.type)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = [(r[0], r[1]) for r in self.session.execute(q)]
        ids = [d.id for d, _ in rows]
        attempts: dict[int, list[WebhookAttempt]] = {i: [] for i in ids}
        if ids:
            aq = (
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id.in_(ids))
                .order_by(WebhookAttempt.id)
            )
            for a in self.session.scalars(aq):
                attempts[a.delivery_id].append(a)
        return [(d, t, attempts[d.id]) for d, t in rows]
