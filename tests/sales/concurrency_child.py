"""Runs in separate processes spawned by the concurrency tests (test_concurrent_confirmations,
test_idempotency), each doing something at the same instant as another process. Imports nothing
from tests.conftest, so that the child keeps the parent's RENTAL_HOME and database."""

from __future__ import annotations

from typing import Any


def pay(who: Any, order_id: str, amount_cents: int, barrier: Any, results: Any) -> None:
    """Record a deposit payment, which confirms the order and reserves its recipients."""
    from kit.db import unit_of_work
    from sales.orders import access, payments
    from segmentation import runtime

    seg = runtime.warm_up()
    barrier.wait(timeout=120)
    with unit_of_work() as session:
        payments.record_payment(session, who, order_id, f"RACE-{order_id}", amount_cents, None, seg)
    with unit_of_work() as session:
        results.put((order_id, access.get_order(session, who, order_id).status.value))


def post_order(
    api_key: str, idempotency_key: str, body: dict[str, Any], barrier: Any, results: Any
) -> None:
    """POST /v1/orders to an application of this process's own, at the same instant as another
    process does with the same Idempotency-Key; puts (status, order id or error code)."""
    from fastapi.testclient import TestClient

    from rental.app import create_app

    client = TestClient(create_app())  # no lifespan: the parent migrated the database
    headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": idempotency_key}
    barrier.wait(timeout=120)
    r = client.post("/v1/orders", json=body, headers=headers)
    doc = r.json()
    results.put((r.status_code, doc.get("id") or doc.get("error")))
