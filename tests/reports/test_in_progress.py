"""A report fetched while the order is sending: a hidden wave shows nothing of its own before
the order is sent, however often the report is fetched."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from dispatch import flows, waves
from dispatch.carriers.base import Submitted
from dispatch.repository import LedgerRepository
from kit import clock
from kit.db import unit_of_work
from sales.orders.models import Order
from tests.conftest import ScanningClient, auth
from tests.factories import started_order

# Seine-Maritime and Mayotte: some fifty of 300 live in Mayotte (UTC+3), whose window opens
# hours before Paris's; its wave is hidden (and the metropolitan one with it).
CRITERIA = {"departments": ["76", "976"]}


def _send(order_id: str, calendar: str, now: datetime) -> int:
    """Every batch of one calendar handed to the carrier, as a worker would; how many."""
    with unit_of_work() as session:
        batches = [b for b in LedgerRepository(session).batches(order_id) if b.calendar == calendar]
    sent = 0
    for batch in batches:
        with unit_of_work() as session:
            assert LedgerRepository(session).claim_batch(order_id, batch.number, now, "run")
        while True:
            with unit_of_work() as session:
                claimed = flows.claim(session, order_id, batch.number, "run", 100, now)
                if claimed is None:
                    break
                _, rows = claimed
                flows.record(
                    session, order_id, rows, [Submitted(r.id, f"s-{r.id}") for r in rows], now
                )
                sent += sum(r.prospect_id >= 0 for r in rows)
        with unit_of_work() as session:
            flows.end_batch(session, order_id, batch.number, "run")
    return sent


def _report(
    client: ScanningClient, key: str, order_id: str, at: datetime, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setattr(clock, "now", lambda: at)
    r = client.get(f"/v1/orders/{order_id}/report", headers=auth(key))
    assert r.status_code == 200, r.text
    doc = dict(r.json())
    doc.pop("generated_at")
    return doc


def test_a_hidden_wave_sent_alone_does_not_show_in_reports_minutes_apart(
    app_client: ScanningClient, org_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: fetch the report, let the Mayotte wave go out alone, fetch it again; the
    difference would be exactly how many live in Mayotte."""
    order, now = started_order(app_client, org_keys, CRITERIA, 300)
    key = org_keys["acme"]
    before = _report(app_client, key, order["id"], now, monkeypatch)
    mayotte = _send(order["id"], "976", now)
    assert 0 < mayotte < 100  # a hidden wave, sent in full
    later = now + timedelta(minutes=5)
    after = _report(app_client, key, order["id"], later, monkeypatch)
    assert after == before  # counts, series, timeline, opt-outs: nothing moved
    assert after["volumes"]["submitted"] == 0
    assert after["volumes"]["pending"] == 300
    assert {w["calendar"]: w["recipients"] for w in after["timeline"]["waves"]} == {
        "976": None,
        "metro": None,
    }
    # Nor does the send plan: the hidden wave follows the order as a whole.
    with unit_of_work() as session:
        row = session.get(Order, order["id"])
        assert row is not None
        plan = {w.calendar: (w.recipients, w.status) for w in waves.for_order(session, row, later)}
    assert plan == {"976": (None, "sending"), "metro": (None, "sending")}
    # Once the order is sent, the report is exact: the hidden waves add up to k or more.
    metro = _send(order["id"], "metro", later)
    with unit_of_work() as session:
        assert flows.pump(session, order["id"], later) == []  # nothing left: sent
    done = _report(app_client, key, order["id"], later, monkeypatch)
    assert done["order_status"] == "sent"
    assert done["volumes"]["submitted"] == mayotte + metro == 300
