"""Two confirmations racing for the same prospects, in two processes, never reserve one
prospect twice."""

from __future__ import annotations

import multiprocessing

from sqlalchemy import select

from kit.db import unit_of_work
from sales.accounts.service import operator
from segmentation.models import Reservation
from tests.conftest import ScanningClient, auth
from tests.factories import create_order, create_quote, deposit_of
from tests.sales import concurrency_child

CORSICA = {"departments": ["2A", "2B"]}


def held(order_id: str) -> set[int]:
    with unit_of_work() as session:
        rows = session.scalars(
            select(Reservation.prospect_id).where(
                Reservation.order_id == order_id, Reservation.released_at.is_(None)
            )
        )
        return {int(p) for p in rows}


def race(client: ScanningClient, keys: dict[str, str], fraction: float) -> dict[str, str]:
    """Two orders of `fraction` of the same segment, confirmed at the same instant."""
    quote = create_quote(client, keys["acme"], CORSICA)
    quantity = int(quote["shown_count"] * fraction)
    orders = [create_order(client, keys["acme"], quote, quantity=quantity) for _ in range(2)]
    with unit_of_work() as session:
        who = operator(session)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=concurrency_child.pay,
            args=(
                who,
                o["id"],
                deposit_of(client, keys["acme"], o["id"])["amount_incl_vat_cents"],
                barrier,
                results,
            ),
        )
        for o in orders
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    return dict(results.get(timeout=5) for _ in procs)


def test_racing_confirmations_reserve_disjoint_sets(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    am = auth(org_keys["am"])
    # Room for both: both are confirmed, and no one is reserved by both (a draw that ignored
    # the other's reservation would share about 40% of the people).
    statuses = race(app_client, org_keys, 0.4)
    a, b = statuses
    assert set(statuses.values()) == {"scheduled"}
    assert held(a).isdisjoint(held(b))
    assert len(held(a)) == len(held(b)) > 0
    for oid in (a, b):
        app_client.post(f"/v1/orders/{oid}/cancel", json={}, headers=am)

    # No room for both: one is confirmed, the other falls short and waits on hold.
    statuses = race(app_client, org_keys, 0.7)
    assert sorted(statuses.values()) == ["on_hold", "scheduled"]
    a, b = statuses
    assert held(a).isdisjoint(held(b))
    for oid in (a, b):
        app_client.post(f"/v1/orders/{oid}/cancel", json={}, headers=am)
    assert held(a) == held(b) == set()
