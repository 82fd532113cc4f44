"""An endpoint that keeps failing: each delivery is tried again with growing waits for three
days, every attempt logged, then marked failed; deliveries failing in a row disable the
endpoint, and a test event it receives puts it back in service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from kit import clock
from kit.db import unit_of_work
from kit.settings import Settings
from sales.accounts.repository import AccountRepository
from tests.conftest import ScanningClient, auth
from tests.webhooks.conftest import Receiver, deliver, deliveries, register
from webhooks import service
from webhooks.events import EventType


def _issue_event(at: datetime) -> int:
    """An invoice.issued event written for Acme's endpoints: how many will receive it."""
    with unit_of_work() as session:
        org = AccountRepository(session).organisation_by_name("Acme")
        assert org is not None
        data = {"invoice_id": "i-1", "amount_incl_vat_cents": 1200}
        return len(service.emit(session, org.id, EventType.invoice_issued, data, at))


def test_a_failing_endpoint_is_retried_with_back_off_then_marked(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    receiver: Receiver,
    settings: Callable[..., Settings],
) -> None:
    settings(webhook_disable_after=1)
    key = org_keys["acme"]
    hook = register(app_client, key, receiver.url, ["invoice.issued"])
    receiver.status = 500
    start = clock.now()
    assert _issue_event(start) == 1
    at, waits = start, []
    while True:
        assert deliver(at), "the delivery was due"
        assert deliver(at) == {}  # not again before its time
        (log,) = deliveries(app_client, key, hook["id"])
        if log["status"] != "pending":
            break
        following = datetime.fromisoformat(log["next_attempt_at"])
        waits.append(following - at)
        at = following
    assert log["status"] == "failed"
    attempts = log["attempts"]
    assert len(attempts) == len(receiver.received) == len(waits) + 1
    assert {a["status_code"] for a in attempts} == {500}
    assert all("500" in a["error"] for a in attempts)
    assert [a["number"] for a in attempts] == list(range(1, len(attempts) + 1))
    # Growing waits (30 s doubled, +/-20%) up to 6 hours, for three days, not longer.
    assert timedelta(seconds=24) <= waits[0] <= timedelta(seconds=36)
    assert all(b > a for a, b in zip(waits[:8], waits[1:9], strict=True))
    assert max(waits) <= timedelta(hours=7.2)
    assert timedelta(hours=60) < at - start <= timedelta(hours=72)
    assert 12 <= len(attempts) <= 30
    # The same message each time: a receiver drops the duplicates by webhook-id.
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1

    (endpoint,) = app_client.get("/v1/webhooks", headers=auth(key)).json()["items"]
    assert endpoint["status"] == "disabled"
    assert endpoint["disabled_at"]
    assert _issue_event(at) == 0  # a disabled endpoint gets no events

    receiver.status = 204
    r = app_client.post(f"/v1/webhooks/{hook['id']}/test", headers=auth(key))
    assert r.status_code == 202
    assert deliver(clock.now()) == {"succeeded": 1}
    (endpoint,) = app_client.get("/v1/webhooks", headers=auth(key)).json()["items"]
    assert endpoint["status"] == "active"


def test_an_endpoint_down_for_a_while_gets_the_event_when_it_is_back(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver
) -> None:
    key = org_keys["acme"]
    hook = register(app_client, key, receiver.url, ["invoice.issued"])
    receiver.status = 503
    start = clock.now()
    assert _issue_event(start) == 1
    assert deliver(start) == {"pending": 1}
    receiver.status = 200
    (log,) = deliveries(app_client, key, hook["id"])
    assert deliver(datetime.fromisoformat(log["next_attempt_at"])) == {"succeeded": 1}
    (log,) = deliveries(app_client, key, hook["id"])
    assert [a["status_code"] for a in log["attempts"]] == [503, 200]
    assert log["status"] == "succeeded"
    assert log["next_attempt_at"] is None
