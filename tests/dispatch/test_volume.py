"""The 10% promise, both ways, at send time: the recipients are drawn again against the base
as it is then; the volume sent is never above the quantity ordered, is topped up when people
left, goes out when at least 90% remain (billed for what was sent), and is held, with nothing
sent, below that. A segment that falls short shows only its offered volume (its count as a
quote would show it, a round figure), never its exact size, whether it is sent or held."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pytest
from sqlalchemy import func, select, update

from dispatch import flows
from dispatch.models import Recipient
from dispatch.repository import TallyRepository
from kit import clock
from kit.db import unit_of_work
from sales.orders import flows as order_flows
from sales.orders.repository import OrderRepository
from segmentation import runtime
from segmentation.criteria import Criteria
from segmentation.repository import ReservationRepository, SuppressionRepository
from tests.conftest import ScanningClient, auth
from tests.factories import (
    at_send_time,
    create_order,
    create_quote,
    pay_deposit,
    scheduled_order,
    send_at,
)

QUANTITY = 200


def _opt_out(ids: np.ndarray, now: datetime) -> None:
    """These prospects answered STOP: on the global suppression list."""
    seg = runtime.current()
    table = seg.engine.contacts_of(ids)
    with unit_of_work() as session:
        suppressions = SuppressionRepository(session)
        for mac in table.column("phone_hmac").to_pylist():
            suppressions.add(bytes(mac), "stop_reply", "test", now)


def _prepare(
    client: ScanningClient, keys: dict[str, str], department: str, leave: int | None
) -> tuple[dict[str, Any], np.ndarray, datetime]:
    """A confirmed order of QUANTITY in one department; with `leave`, everyone of the
    segment outside the reservation has opted out, so no top-up is possible, then `leave`
    reserved recipients opt out too."""
    criteria = {"departments": [department]}
    order = scheduled_order(client, keys, criteria, QUANTITY)
    now = at_send_time(order)
    seg = runtime.current()
    with unit_of_work() as session:
        reserved = np.asarray(ReservationRepository(session).held_by(order["id"]), dtype=np.int64)
        segment = seg.engine.matching_ids(Criteria.model_validate(criteria), now.date())
    assert len(reserved) == QUANTITY
    if leave is not None:
        _opt_out(np.setdiff1d(segment, reserved), now)
        _opt_out(reserved[:leave], now)
    return order, reserved, now


def _ledger(order_id: str) -> list[int]:
    with unit_of_work() as session:
        return list(
            session.scalars(
                select(Recipient.prospect_id).where(
                    Recipient.order_id == order_id, Recipient.prospect_id >= 0
                )
            )
        )


def test_people_who_left_are_replaced_up_to_the_quantity_never_above(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, reserved, now = _prepare(app_client, org_keys, "59", None)
    _opt_out(reserved[:30], now)  # 15% of the reservation left, the segment has more
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
    sent_to = _ledger(order["id"])
    assert len(sent_to) == QUANTITY  # topped up, never above
    assert not set(sent_to) & set(reserved[:30].tolist())  # opt-outs are final


def _keep_only(
    criteria: dict[str, Any], attributes: pl.DataFrame, now: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """Everyone of the segment opts out but 185 people: 60 of the secret sample and 125
    others, 5 of those men. Returns the 185 and the 5 men (the group T of the attack)."""
    seg = runtime.current()
    segment = seg.engine.matching_ids(Criteria.model_validate(criteria), now.date())
    sampled = seg.engine.person_sample.flags(segment).astype(bool)
    men = np.isin(segment, attributes.filter(pl.col("sex") == "M")["prospect_id"].to_numpy())
    keep = np.concatenate(
        (
            segment[sampled & ~men][:60],
            segment[~sampled & ~men][:120],
            segment[~sampled & men][:5],
        )
    )
    assert len(keep) == 185
    _opt_out(np.setdiff1d(segment, keep), now)
    return keep, segment[~sampled & men][:5]


def _report(client: ScanningClient, key: str, order_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/orders/{order_id}/report", headers=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_two_exhausted_orders_do_not_tell_the_group_between_them(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    attributes: pl.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The attack: order all of a segment A, then all of A minus a small group T (here with
    `exclude`), each for more than the segment holds but within 10%. Sent in full, the two
    reports and invoices would tell |T| exactly. A short draw goes out at its offered volume
    (the count a quote would show, rounded down to a round figure) instead: 5 men between
    the two, and the customer sees the same volume twice."""
    a = {"departments": ["62"]}
    a_minus_t = {"departments": ["62"], "exclude": {"sex": ["M"]}}
    first = scheduled_order(app_client, org_keys, a, QUANTITY)
    keep, group = _keep_only(a, attributes, at_send_time(first))
    assert order_flows.offered_volume(keep, runtime.current().engine.person_sample) == 180
    now = at_send_time(first)
    with unit_of_work() as session:  # drawn again at send time: still the 185, cut to 180
        assert flows.start(session, first["id"], runtime.current(), now)
    assert len(_ledger(first["id"])) == 180  # 90% of the quantity: it goes out
    with unit_of_work() as session:  # sent to the end: billed for what was sent
        session.execute(
            update(Recipient).where(Recipient.order_id == first["id"]).values(status="submitted")
        )
        # Standing in for the worker, whose recording keeps the report's tallies.
        TallyRepository(session).rebuild(first["id"])
        row = OrderRepository(session).get(first["id"], None)
        assert row is not None
        flows.finish(session, row, now)
    monkeypatch.setattr(clock, "now", lambda: now)
    shown_a = _report(app_client, org_keys["acme"], first["id"])["volumes"]["submitted"]
    invoices = app_client.get(
        "/v1/invoices", params={"order_id": first["id"]}, headers=auth(org_keys["acme"])
    ).json()["items"]
    [balance] = [i for i in invoices if i["kind"] == "balance"]
    assert f"{shown_a} messages sent" in balance["description"]
    # Ten days later (past the pressure gap), the same segment without the 5 men.
    quote = create_quote(app_client, org_keys["acme"], a_minus_t)
    second = create_order(
        app_client, org_keys["acme"], quote, quantity=QUANTITY, send_at=send_at(13)
    )
    assert (
        pay_deposit(app_client, org_keys["acme"], org_keys["am"], second["id"]).status_code == 201
    )
    later = at_send_time(second)
    with unit_of_work() as session:
        assert flows.start(session, second["id"], runtime.current(), later)
    monkeypatch.setattr(clock, "now", lambda: later)
    shown_a_minus_t = _report(app_client, org_keys["acme"], second["id"])["volumes"]["recipients"]
    assert len(group) == 5
    assert (shown_a, shown_a_minus_t) == (180, 180)  # not (185, 180): |T| stays unknown


def test_below_90_percent_nothing_is_sent_and_the_order_is_held(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order, _, now = _prepare(app_client, org_keys, "69", 30)  # 85% remain
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
        rows = session.scalar(select(func.count()).where(Recipient.order_id == order["id"]))
    assert rows == 0  # nothing planned, nothing sent
    held = app_client.get(f"/v1/orders/{order['id']}", headers=auth(org_keys["acme"])).json()
    assert held["status"] == "on_hold"
    offered = held["offered_quantity"]
    assert 100 <= offered < QUANTITY * 0.9  # a rounded, noisy count, never under the minimum
