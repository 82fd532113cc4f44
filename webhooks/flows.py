"""Delivery, step by step: claim the due deliveries (one short transaction) -> POST each, signed,
outside any transaction -> record the attempt and what comes next (one transaction each).

At least once: an attempt whose worker died is tried again when its lease ends, with the same
`webhook-id`, so a receiver drops what it already has. Failed attempts are retried with
exponential back-off and jitter for `retry_hours` (72 by default); then the delivery is failed,
and an endpoint whose deliveries failed `disable_after` times in a row is disabled.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.orm import Session

from kit.db import retried, unit_of_work
from kit.redact import redact
from kit.settings import WebhookSettings, get_settings
from webhooks import signing
from webhooks.events import TEST_EVENT
from webhooks.exceptions import UrlNotAllowed
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookEvent
from webhooks.repository import OutboxRepository
from webhooks.service import check_url

log = logging.getLogger(__name__)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=6)
BATCH = 100
ERROR_LENGTH = 300


def backoff(attempt: int) -> timedelta:
    """The wait after failed attempt number `attempt` (1, 2...): 30 s doubled each time up to
    6 h, then every 6 h; +/-20% jitter so that endpoints back from an outage are not all
    called at once."""
    wait: timedelta = min(FIRST_RETRY * 2 ** min(attempt - 1, 20), LONGEST_WAIT)
    return wait * random.uniform(0.8, 1.2)


def body(event: WebhookEvent) -> bytes:
    """What is POSTed (and signed): the Standard Webhooks envelope."""
    doc = {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.data}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Job:
    delivery_id: int
    attempt: int
    url: str
    secret: str
    message_id: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    error: str | None
    final: bool = False  # not worth another attempt (the URL is no longer allowed)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def claim(session: Session, now: datetime, rules: WebhookSettings) -> list[Job]:
    """The deliveries due now that this run took (compare-and-set on their attempt count)."""
    outbox = OutboxRepository(session)
    lease_until = now + timedelta(seconds=rules.timeout_seconds + 60)
    jobs = []
    for delivery_id, attempts, _ in outbox.due(now, BATCH):
        if not outbox.claim(delivery_id, attempts, lease_until):
            continue  # another worker took it
        found = outbox.delivery(delivery_id)
        assert found is not None  # noqa: S101  (just claimed, in this transaction)
        _, event, endpoint = found
        jobs.append(
            Job(
                delivery_id,
                attempts + 1,
                endpoint.url,
                signing.unseal(endpoint.secret, endpoint.id),
                event.id,
                body(event),
            )
        )
    return jobs


def post(client: httpx.Client, job: Job, rules: WebhookSettings) -> Outcome:
    """One attempt. The signature's timestamp is the real time of sending, whatever the
    service's clock says (a demo may run it elsewhere): receivers compare it with theirs."""
    try:
        check_url(job.url, rules)  # the rules may have changed since it was registered
    except UrlNotAllowed as exc:
        return Outcome(None, 0, exc.detail, final=True)
    headers = signing.headers(job.secret, job.message_id, datetime.now(UTC), job.body)
    started = time.monotonic()
    try:
        response = client.post(job.url, content=job.body, headers=headers)
        error = None if response.is_success else f"the endpoint answered {response.status_code}"
        code: int | None = response.status_code
    except httpx.HTTPError as exc:
        code, error = None, f"{type(exc).__name__}: {exc}"
    elapsed = int((time.monotonic() - started) * 1000)
    return Outcome(code, elapsed, redact(error)[:ERROR_LENGTH] if error else None)


def record(
    session: Session, job: Job, outcome: Outcome, now: datetime, rules: WebhookSettings
) -> DeliveryStatus:
    """Log the attempt; the delivery succeeded, waits for its next attempt, or failed."""
    outbox = OutboxRepository(session)
    outbox.add_attempt(
        WebhookAttempt(
            delivery_id=job.delivery_id,
            number=job.attempt,
            at=now,
            status_code=outcome.status_code,
            duration_ms=outcome.duration_ms,
            error=outcome.error,
        )
    )
    found = outbox.delivery(job.delivery_id)
    assert found is not None  # noqa: S101  (deliveries are never deleted)
    delivery, event, endpoint = found
    if outcome.succeeded:
        delivery.status, delivery.finished_at = DeliveryStatus.succeeded, now
        endpoint.failed_deliveries = 0
        if event.type == TEST_EVENT:
            endpoint.disabled_at = None  # it answers again: back in service
        return delivery.status
    after = now + backoff(job.attempt)
    if not outcome.final and after <= delivery.created_at + timedelta(hours=rules.retry_hours):
        delivery.next_attempt_at = after
        return delivery.status
    delivery.status, delivery.finished_at = DeliveryStatus.failed, now
    if event.type != TEST_EVENT:
        endpoint.failed_deliveries += 1
        if endpoint.failed_deliveries >= rules.disable_after and endpoint.disabled_at is None:
            endpoint.disabled_at = now
            log.warning("webhook endpoint %s disabled: deliveries keep failing", endpoint.id)
    return delivery.status


def deliver_due(now: datetime) -> dict[DeliveryStatus, int]:
    """One run of the sweep: how many deliveries ended in each state."""
    rules = get_settings().webhooks
    with unit_of_work() as session:
        jobs = claim(session, now, rules)
    done: dict[DeliveryStatus, int] = {}
    if not jobs:
        return done
    # trust_env=False: no proxy from the environment; a redirect is an answer, not followed.
    with httpx.Client(timeout=rules.timeout_seconds, follow_redirects=False, trust_env=False) as c:
        for job in jobs:
            outcome = post(c, job, rules)

            def save(
                session: Session, job: Job = job, outcome: Outcome = outcome
            ) -> DeliveryStatus:
                return record(session, job, outcome, now, rules)

            status = retried(save)
            done[status] = done.get(status, 0) + 1
    return done
