"""A whole rental seen from the customer's endpoint on 127.0.0.1: every event of the order,
its invoices and its report arrives signed with the endpoint's secret, in order, and carries no
phone number or prospect id; a held order tells the quantity it offers."""

from __future__ import annotations

from datetime import timedelta

from standardwebhooks import Webhook

from dispatch import flows
from kit.db import unit_of_work
from reports import service as reports
from sales.invoices import service as invoices
from segmentation import runtime
from tests.conftest import Canary, ScanningClient, auth
from tests.dispatch.test_volume import _prepare
from tests.factories import at_send_time, invoices_of, scheduled_order, send_in_process
from tests.webhooks.conftest import Receiver, deliver, deliveries, register
from webhooks import tasks


def test_a_whole_rental_reaches_the_endpoint_signed(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver, canary: Canary
) -> None:
    key = org_keys["acme"]
    hook = register(app_client, key, receiver.url)
    order = scheduled_order(app_client, org_keys, {"departments": ["69"]}, 200)
    now = at_send_time(order)
    send_in_process(order["id"], now)
    with unit_of_work() as session:
        assert reports.finalise_due(session, now + timedelta(days=5)) == [order["id"]]
    with unit_of_work() as session:
        assert invoices.announce_overdue(session, now + timedelta(days=6)) == 1
    with unit_of_work() as session:  # once per invoice
        assert invoices.announce_overdue(session, now + timedelta(days=7)) == 0

    assert deliver(now + timedelta(days=7)) == {"succeeded": 11}
    signer = Webhook(hook["secret"])
    docs = []
    for got in receiver.received:
        docs.append(signer.verify(got.body, got.headers))
        assert canary.hits(got.body.decode()) == []
    assert len({got.headers["webhook-id"] for got in receiver.received}) == 11

    def of(kind: str) -> list[dict]:  # type: ignore[type-arg]
        return [d["data"] for d in docs if d["type"] == kind]

    moves = [(d["previous_status"], d["status"]) for d in of("order.status_changed")]
    assert moves == [
        ("awaiting_deposit", "confirmed"),
        ("confirmed", "scheduled"),
        ("scheduled", "dispatching"),
        ("dispatching", "sent"),
        ("sent", "reported"),
    ]
    assert [d["status"] for d in of("order.sending_started")] == ["dispatching"]
    assert [d["status"] for d in of("order.sending_finished")] == ["sent"]
    (final,) = of("report.final")
    assert final["report"]["state"] == "final"
    assert app_client.get(final["report"]["url"], headers=auth(key)).status_code == 200
    billed = {i["id"]: i for i in invoices_of(app_client, key, order["id"])}
    issued = of("invoice.issued")
    assert [i["kind"] for i in issued] == ["deposit", "balance"]
    for sent in issued:
        shown = billed[sent["invoice_id"]]
        assert (sent["number"], sent["amount_incl_vat_cents"], sent["due_date"]) == (
            shown["number"],
            shown["amount_incl_vat_cents"],
            shown["due_date"],
        )
    (overdue,) = of("invoice.overdue")
    assert overdue["kind"] == "balance"
    assert overdue["days_late"] >= 1
    assert all(d["data"]["order_id"] == order["id"] for d in docs)
    assert all(d["status"] == "succeeded" for d in deliveries(app_client, key, hook["id"]))


def test_a_held_order_tells_the_quantity_it_offers(
    app_client: ScanningClient, org_keys: dict[str, str], receiver: Receiver
) -> None:
    hook = register(app_client, org_keys["acme"], receiver.url, ["order.on_hold"])
    order, _, now = _prepare(app_client, org_keys, "69", 30)  # 85% of the segment remains
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
    tasks.deliver()  # the workers' task itself (the event happened at `now`, ahead of it)
    deliver(now)
    (got,) = receiver.received
    held = Webhook(hook["secret"]).verify(got.body, got.headers)["data"]
    shown = app_client.get(f"/v1/orders/{order['id']}", headers=auth(org_keys["acme"])).json()
    assert held["hold_kind"] == "volume"
    assert held["status"] == "on_hold"
    assert held["offered_quantity"] == shown["offered_quantity"] >= 100
