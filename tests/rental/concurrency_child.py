"""Runs in a separate process (spawned by test_concurrent_confirmations): records a deposit
payment, which confirms the order and reserves its recipients, at the same instant as another
process does the same for another order. Imports nothing from tests.conftest, so that the
child keeps the parent's RENTAL_HOME and database."""

from __future__ import annotations

from typing import Any


def pay(who: Any, order_id: str, amount_cents: int, barrier: Any, results: Any) -> None:
    from kit.db import unit_of_work
    from rental.orders import service
    from segmentation import runtime

    seg = runtime.warm_up()
    barrier.wait(timeout=120)
    with unit_of_work() as session:
        service.record_payment(session, who, order_id, f"RACE-{order_id}", amount_cents, None, seg)
    with unit_of_work() as session:
        results.put((order_id, service.get_order(session, who, order_id).status.value))
