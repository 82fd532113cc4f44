"""The cost a report shows is what the order's invoices bill, for the messages handed over."""

from __future__ import annotations

from datetime import timedelta

from dispatch import flows
from dispatch.repository import LedgerRepository
from dispatch.states import HANDED_OVER
from kit.db import unit_of_work
from reports import service
from segmentation import runtime
from tests.conftest import ScanningClient, auth
from tests.factories import (
    SentOrder,
    at_send_time,
    invoices_of,
    scheduled_order,
    submit_result,
)


def test_a_sent_order_shows_what_its_invoices_bill(
    app_client: ScanningClient, org_keys: dict[str, str], sent_order: SentOrder
) -> None:
    r = app_client.get(f"/v1/orders/{sent_order.id}/report", headers=auth(org_keys["acme"]))
    cost = r.json()["cost"]
    invoices = invoices_of(app_client, org_keys["acme"], sent_order.id)
    assert {i["kind"] for i in invoices} & {"balance", "credit_note"}  # the balance is settled
    sign = {"deposit": 1, "balance": 1, "credit_note": -1}
    for total, amount in (
        ("total_excl_vat_cents", "amount_excl_vat_cents"),
        ("vat_cents", "vat_cents"),
        ("total_incl_vat_cents", "amount_incl_vat_cents"),
    ):
        assert cost[total] == sum(sign[i["kind"]] * i[amount] for i in invoices) > 0
    assert cost["messages_billed"] == r.json()["volumes"]["submitted"]


def test_an_order_still_sending_shows_no_total_until_its_balance_is_invoiced(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order = scheduled_order(app_client, org_keys, {"departments": ["85"]}, 300)
    now = at_send_time(order)
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
    with unit_of_work() as session:
        number = LedgerRepository(session).batches(order["id"])[0].number
        assert LedgerRepository(session).claim_batch(order["id"], number, now, "test")
    with unit_of_work() as session:
        claimed = flows.claim(session, order["id"], number, "test", 200, now)
        assert claimed is not None
        _, rows = claimed
        flows.record(session, order["id"], rows, [submit_result(r) for r in rows], now)
    with unit_of_work() as session:
        cost = service.report_of(session, order["id"], now + timedelta(minutes=5)).cost
        counts = LedgerRepository(session).counts(order["id"])
    handed_over = sum(counts.get(s, 0) for s in HANDED_OVER)
    assert 0 < cost.messages_billed == handed_over < 300  # type: ignore[operator]
    assert cost.total_excl_vat_cents is None
    assert cost.vat_cents is None
    assert cost.total_incl_vat_cents is None
    assert "once the order is sent" in cost.note
