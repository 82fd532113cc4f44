"""Registering endpoints: the secret shown once, URLs that may be used, one organisation's
endpoints out of another's reach, the test event, removal; and the outbox's transaction."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook, WebhookVerificationError

from kit import clock
from kit.db import unit_of_work
from kit.settings import Settings
from sales.accounts.repository import AccountRepository
from tests.conftest import ScanningClient, auth
from tests.webhooks.conftest import Receiver, deliver, deliveries, register
from webhooks import service, signing
from webhooks.events import EventType
from webhooks.models import WebhookEndpoint, WebhookEvent


def acme(session: Session) -> int:
    org = AccountRepository(session).organisation_by_name("Acme")
    assert org is not None
    return org.id


def test_an_endpoint_gets_its_secret_once_and_a_test_event_signed_with_it(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver
) -> None:
    key = org_keys["acme"]
    hook = register(app_client, key, receiver.url, ["invoice.issued"])
    assert hook["secret"].startswith("whsec_")
    assert hook["status"] == "active"
    listed = app_client.get("/v1/webhooks", headers=auth(key)).json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]
    assert hook["secret"] not in str(listed)

    r = app_client.post(f"/v1/webhooks/{hook['id']}/test", headers=auth(key))
    assert r.status_code == 202, r.text
    assert deliver() == {"succeeded": 1}
    (got,) = receiver.received
    doc = Webhook(hook["secret"]).verify(got.body, got.headers)
    assert doc["type"] == "webhook.test"
    assert doc["data"]["endpoint_id"] == hook["id"]
    assert got.headers["webhook-id"] == r.json()["event_id"]
    (log,) = deliveries(app_client, key, hook["id"])
    assert log["status"] == "succeeded"
    assert [(a["number"], a["status_code"]) for a in log["attempts"]] == [(1, 200)]


def test_the_database_keeps_the_secret_sealed_and_an_older_plain_one_still_signs(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver
) -> None:
    """A copy of the database cannot sign a webhook: the secret is stored sealed, bound to
    its endpoint (moved to another row it does not open). A secret stored in clear before
    secrets were sealed still signs its deliveries."""
    key = org_keys["acme"]
    sealed_hook = register(app_client, key, receiver.url, ["invoice.issued"])
    plain_hook = register(app_client, key, receiver.url, ["invoice.issued"])
    with unit_of_work() as session:
        rows = {e.id: e for e in session.scalars(select(WebhookEndpoint))}
        stored = rows[sealed_hook["id"]].secret
        assert stored.startswith(signing.SEALED)
        assert sealed_hook["secret"] not in stored
        assert signing.unseal(stored, sealed_hook["id"]) == sealed_hook["secret"]
        with pytest.raises(InvalidTag):
            signing.unseal(stored, plain_hook["id"])
        rows[plain_hook["id"]].secret = plain_hook["secret"]  # as stored before sealing
    for hook in (sealed_hook, plain_hook):
        r = app_client.post(f"/v1/webhooks/{hook['id']}/test", headers=auth(key))
        assert r.status_code == 202, r.text
    assert deliver() == {"succeeded": 2}
    signed = {got.headers["webhook-id"]: got for got in receiver.received}
    assert len(signed) == 2
    verified = set()
    for hook in (sealed_hook, plain_hook):
        for got in signed.values():
            try:
                doc = Webhook(hook["secret"]).verify(got.body, got.headers)
            except WebhookVerificationError:
                continue
            verified.add(doc["data"]["endpoint_id"])
    assert verified == {sealed_hook["id"], plain_hook["id"]}


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/rental",
        "http://10.0.0.5/hooks",
        "ftp://127.0.0.1/hooks",
        "http://user:s3cr3t@127.0.0.1/hooks",
    ],
)
def test_in_tests_only_loopback_urls_are_accepted(
    app_client: ScanningClient, org_keys: dict[str, str], url: str
) -> None:
    r = app_client.post(
        "/v1/webhooks",
        json={"url": url, "events": ["report.final"]},
        headers=auth(org_keys["acme"]),
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "webhook_url_not_allowed"
    assert "s3cr3t" not in r.text  # a credential typed in is not echoed


def test_in_production_https_to_a_public_host_only(
    app_client: ScanningClient, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    settings(webhook_urls="public")

    def answer(url: str) -> tuple[int, str]:
        body = {"url": url, "events": ["report.final"]}
        r = app_client.post("/v1/webhooks", json=body, headers=auth(org_keys["acme"]))
        return r.status_code, r.json().get("detail", "")

    assert answer("https://hooks.example.com/rental")[0] == 201
    status, detail = answer("http://hooks.example.com/rental")
    assert status == 422
    assert "https://" in detail
    for internal in ("https://127.0.0.1/h", "https://192.168.1.4/h", "https://localhost/h"):
        status, detail = answer(internal)
        assert status == 422, internal
        assert "public" in detail, internal


def test_out_of_the_box_a_receiver_on_this_machine_may_be_tried(
    app_client: ScanningClient, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    settings(webhook_urls=None)  # the default: local

    def status(url: str) -> int:
        body = {"url": url, "events": ["report.final"]}
        return app_client.post(
            "/v1/webhooks", json=body, headers=auth(org_keys["acme"])
        ).status_code

    assert status("http://127.0.0.1:9/hook") == 201
    assert status("https://hooks.example.com/rental") == 201
    assert status("http://hooks.example.com/rental") == 422
    assert status("https://10.1.2.3/hook") == 422


def test_another_organisations_endpoint_is_not_found(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver
) -> None:
    hook = register(app_client, org_keys["acme"], receiver.url)
    other = auth(org_keys["globex"])
    assert app_client.get("/v1/webhooks", headers=other).json()["items"] == []
    for method, path in (
        ("get", f"/v1/webhooks/{hook['id']}/deliveries"),
        ("post", f"/v1/webhooks/{hook['id']}/test"),
        ("delete", f"/v1/webhooks/{hook['id']}"),
    ):
        r = app_client.request(method, path, headers=other)
        assert r.status_code == 404, (method, path, r.text)
    # An account manager registers one for an organisation it names, and sees them all.
    staff = auth(org_keys["am"])
    r = app_client.post(
        "/v1/webhooks", json={"url": receiver.url, "events": ["report.final"]}, headers=staff
    )
    assert r.status_code == 422
    assert "organisation_id" in r.json()["detail"]
    assert app_client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=staff).status_code == 200


def test_an_unknown_event_is_refused_with_the_list(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver
) -> None:
    body = {"url": receiver.url, "events": ["order.shipped"]}
    r = app_client.post("/v1/webhooks", json=body, headers=auth(org_keys["acme"]))
    assert r.status_code == 422
    assert "invoice.overdue" in r.text


def test_a_removed_endpoint_gets_nothing_more(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver
) -> None:
    key = org_keys["acme"]
    hook = register(app_client, key, receiver.url, ["invoice.issued"])
    with unit_of_work() as session:
        org = acme(session)
        service.emit(session, org, EventType.invoice_issued, {"invoice_id": "x"}, clock.now())
    assert app_client.delete(f"/v1/webhooks/{hook['id']}", headers=auth(key)).status_code == 204
    assert deliver() == {}
    assert receiver.received == []
    assert app_client.get("/v1/webhooks", headers=auth(key)).json()["items"] == []


def test_an_event_of_a_rolled_back_change_is_never_written(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver
) -> None:
    register(app_client, org_keys["acme"], receiver.url, ["invoice.issued"])

    def change_that_fails() -> None:
        with unit_of_work() as session:
            org = acme(session)
            assert service.emit(session, org, EventType.invoice_issued, {}, clock.now())
            raise RuntimeError("the change failed after the event was written")

    with pytest.raises(RuntimeError):
        change_that_fails()
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert deliver() == {}


def test_no_count_under_the_minimum_leaves_in_an_event(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver
) -> None:
    hook = register(app_client, org_keys["acme"], receiver.url, ["order.on_hold"])
    with unit_of_work() as session:
        org = acme(session)
        data = {"order_id": "o", "quantity": 250, "offered_quantity": 37}
        service.emit(session, org, EventType.order_on_hold, data, clock.now())
    deliver()
    (got,) = receiver.received
    doc = Webhook(hook["secret"]).verify(got.body, got.headers)
    assert doc["data"]["quantity"] == 250
    assert doc["data"]["offered_quantity"] is None
