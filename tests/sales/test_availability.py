"""The quote and the draw agree on who is available: people held by an order that is past its
send time and still sending are neither counted by a quote nor drawn by another order, so an
order for the quoted volume is drawn in full, at confirmation and again at send time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from dispatch import flows as dispatch_flows
from dispatch.models import Recipient
from kit import clock
from kit.db import unit_of_work
from kit.settings import Settings
from segmentation import runtime
from segmentation.repository import ReservationRepository
from tests.conftest import ScanningClient, auth
from tests.factories import at_send_time, create_order, create_quote, pay_deposit

CRITERIA = {"departments": ["71"]}


def held_by(order_id: str) -> np.ndarray:
    with unit_of_work() as session:
        return np.asarray(ReservationRepository(session).held_by(order_id), dtype=np.int64)


def ledger_of(order_id: str) -> np.ndarray:
    with unit_of_work() as session:
        ids = session.scalars(
            select(Recipient.prospect_id).where(
                Recipient.order_id == order_id, Recipient.prospect_id >= 0
            )
        )
        return np.asarray(list(ids), dtype=np.int64)


def exact_count(client: ScanningClient, am: str, quote: dict[str, Any]) -> int:
    r = client.get(f"/v1/quotes/{quote['id']}", headers=auth(am))
    assert r.status_code == 200, r.text
    return int(r.json()["exact_count"])


def test_people_held_by_an_order_still_sending_are_neither_quoted_nor_drawn(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    settings: Callable[..., Settings],
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    # No minimum gap: the case where a quote looked only at orders sending from now on.
    settings(pressure_min_gap_days=0)
    before = create_quote(app_client, acme, CRITERIA)
    assert before["shown_count"] is not None
    assert before["shown_count"] >= 600, before
    first = create_order(app_client, acme, before, quantity=before["shown_count"] // 2)
    assert pay_deposit(app_client, acme, am, first["id"]).status_code == 201
    sending = at_send_time(first)
    with unit_of_work() as session:
        assert dispatch_flows.start(session, first["id"], runtime.current(), sending)
    taken = held_by(first["id"])
    assert len(taken) >= 0.9 * first["quantity"]

    # A day later the first order is still sending (a long send, a carrier down): it holds
    # its people until it is sent.
    later: datetime = sending + timedelta(days=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    quote = create_quote(app_client, acme, CRITERIA)
    # Nobody left the segment but the people the first order holds (a few may have passed
    # the inactivity limit since): the quote does not count them.
    assert exact_count(app_client, am, quote) <= exact_count(app_client, am, before) - len(taken)

    # An order for the quoted volume is drawn and scheduled, not held for lack of people
    # (the quote of 1,400 that went on hold before this rule). The volume is the exact count
    # when the shown one is above it: the shown count's noise (docs/privacy.md, p95 8.8% at 1k,
    # a new secret sample every test run) can put it more than 10% over the people there are,
    # and a hold for that reason is the 90% rule working, not this one failing.
    available = min(quote["shown_count"], exact_count(app_client, am, quote))
    second = create_order(app_client, acme, quote, quantity=available)
    assert pay_deposit(app_client, acme, am, second["id"]).status_code == 201
    r = app_client.get(f"/v1/orders/{second['id']}", headers=auth(acme))
    assert (r.json()["status"], r.json()["reservation"]) == ("scheduled", "complete"), r.text
    drawn = held_by(second["id"])
    assert len(drawn) >= 0.9 * second["quantity"]
    assert not np.intersect1d(drawn, taken).size

    # At its send time, the first order still sending, the re-validation finds the volume too.
    with unit_of_work() as session:
        assert dispatch_flows.start(session, second["id"], runtime.current(), at_send_time(second))
    r = app_client.get(f"/v1/orders/{second['id']}", headers=auth(acme))
    assert r.json()["status"] == "dispatching", r.text
    sent_to = ledger_of(second["id"])
    assert 0.9 * second["quantity"] <= len(sent_to) <= second["quantity"]
    assert not np.intersect1d(sent_to, taken).size
