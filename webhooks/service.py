"""Endpoints an organisation registers, and the events written for them.

`emit` is the outbox: it writes the event and one delivery per subscribed endpoint in the
caller's transaction, next to the change it announces. A rolled-back change leaves no event; a
committed one always has its deliveries, which the workers send (webhooks/flows.py). Services
never commit.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from kit.settings import WebhookSettings, get_settings
from webhooks import signing
from webhooks.events import COUNT_FIELDS, TEST_EVENT, EventType
from webhooks.exceptions import EndpointNotFound, OrganisationRequired, UrlNotAllowed
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.repository import EndpointRepository, OutboxRepository
from webhooks.schemas import WebhookCreate

LOOPBACK_NAMES = ("localhost",)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    address = _address(host)
    if address is not None:
        return address.is_loopback
    return host in LOOPBACK_NAMES or host.endswith(".localhost")


def _is_internal(host: str) -> bool:
    """An address no customer's server has: this machine, a private or reserved network."""
    address = _address(host)
    if address is None:
        return _is_loopback(host)
    return not address.is_global or address.is_multicast


def check_url(url: str, rules: WebhookSettings) -> str:
    """The URL if events may be sent there, else a 422 that says what would be accepted."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError as exc:
        raise UrlNotAllowed(f"the URL cannot be read ({exc}): give a full https:// URL") from exc
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise UrlNotAllowed("give a full URL with its scheme and host, e.g. https://hooks.example/")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed(
            "the URL carries a user name or password: remove them and check the signature "
            "of each request instead"
        )
    if rules.urls == "loopback":
        if not _is_loopback(host):
            raise UrlNotAllowed(
                "this service is set up for tests or a demo (RENTAL_WEBHOOK_URLS=loopback): "
                "only URLs on 127.0.0.1, ::1 or localhost are accepted"
            )
        return url
    if rules.urls == "local" and _is_loopback(host):
        return url
    if parts.scheme != "https":
        raise UrlNotAllowed("use an https:// URL: events are only sent over TLS")
    if _is_internal(host):
        raise UrlNotAllowed(
            "the URL points at this machine or a private or reserved address: give your "
            "server's public name or address"
        )
    return url


def scope(organisation_id: int | None, caller_org: int, is_staff: bool) -> int:
    """The organisation an endpoint is registered for: a client's own; staff name one."""
    if not is_staff:
        return caller_org
    if organisation_id is None:
        raise OrganisationRequired(
            "say which organisation the endpoint is for: add ?organisation_id=<id>"
        )
    return organisation_id


def register(
    session: Session,
    body: WebhookCreate,
    *,
    organisation_id: int,
    user_id: int,
    now: datetime,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint with a fresh secret, stored sealed; returns it with the secret itself,
    to be shown this once."""
    url = check_url(body.url, get_settings().webhooks)
    endpoint_id, secret = str(uuid.uuid4()), signing.new_secret()
    endpoint = EndpointRepository(session).add(
        WebhookEndpoint(
            id=endpoint_id,
            organisation_id=organisation_id,
            url=url,
            description=body.description,
            events=sorted({e.value for e in body.events}),
            secret=signing.seal(secret, endpoint_id),
            created_by=user_id,
            created_at=now,
            failed_deliveries=0,
        )
    )
    return endpoint, secret


def get(session: Session, endpoint_id: str, organisation_id: int | None) -> WebhookEndpoint:
    """The endpoint, if the caller's organisation (None: staff) has it; 404 otherwise."""
    endpoint = EndpointRepository(session).get(endpoint_id, organisation_id)
    if endpoint is None:
        raise EndpointNotFound("no such webhook endpoint among your organisation's")
    return endpoint


def delete(session: Session, endpoint_id: str, organisation_id: int | None, now: datetime) -> None:
    """No more events are sent there; its delivery log is kept."""
    get(session, endpoint_id, organisation_id).deleted_at = now


def _message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _protected(data: dict[str, Any], k: int) -> dict[str, Any]:
    """No count of people under the minimum segment size leaves in an event: it is null."""
    out = dict(data)
    for name in COUNT_FIELDS:
        value = out.get(name)
        if isinstance(value, int) and value < k:
            out[name] = None
    return out


def emit(
    session: Session,
    organisation_id: int,
    event_type: EventType | str,
    data: dict[str, Any],
    occurred_at: datetime,
    *,
    key: str | None = None,
    endpoint: WebhookEndpoint | None = None,
) -> list[WebhookDelivery]:
    """Write the event for every endpoint of the organisation subscribed to it (or for
    `endpoint` only), in the caller's transaction. With `key`, an event is written once only.
    Nothing is written when no endpoint listens."""
    outbox = OutboxRepository(session)
    if key is not None and outbox.keyed(key):
        return []
    if endpoint is not None:
        targets = [endpoint.id]
    else:
        active = EndpointRepository(session).active(organisation_id)
        targets = [e.id for e in active if str(event_type) in e.events]
    if not targets:
        return []
    event = WebhookEvent(
        id=_message_id(),
        organisation_id=organisation_id,
        type=str(event_type),
        key=key,
        data=_protected(data, get_settings().privacy.min_segment_size),
        occurred_at=occurred_at,
    )
    return outbox.add(event, targets)


def send_test(
    session: Session, endpoint_id: str, organisation_id: int | None, now: datetime
) -> WebhookDelivery:
    """A `webhook.test` event for this endpoint alone, sent by the workers like any other (a
    disabled endpoint gets it too, and is enabled again once it is received)."""
    endpoint = get(session, endpoint_id, organisation_id)
    data = {"endpoint_id": endpoint.id, "message": "a test event: your endpoint is reachable"}
    return emit(session, endpoint.organisation_id, TEST_EVENT, data, now, endpoint=endpoint)[0]
