"""A worker whose host has an older base than one the service already drew from (another host's
newer snapshot) does not start an order from it: nothing is drawn, the order stays scheduled
for a worker of an up-to-date host (docs/deploy.md). tests/rental/test_multihost.py shows the
same through two hosts' APIs on PostgreSQL."""

from __future__ import annotations

import pytest

from datasets import snapshot
from dispatch import flows
from kit import locks
from kit.db import unit_of_work
from sales.orders.exceptions import StaleSnapshot
from sales.orders.flows import NEWEST_DRAWN
from segmentation import runtime
from tests.conftest import ScanningClient, auth
from tests.factories import at_send_time, scheduled_order


def test_an_older_base_than_one_already_drawn_from_does_not_start_an_order(
    app_client: ScanningClient, org_keys: dict[str, str], base: snapshot.Snapshot
) -> None:
    order = scheduled_order(app_client, org_keys, {"departments": ["35"]}, 150)
    now = at_send_time(order)
    newer = snapshot.version_number(base.version) + 1
    with unit_of_work() as session:  # another host drew an order from the next snapshot
        locks.raise_to(session, NEWEST_DRAWN, newer)

    with pytest.raises(StaleSnapshot, match="copy the newer snapshot") as refused:
        with unit_of_work() as session:
            flows.start(session, order["id"], runtime.current(), now)
    assert refused.value.extra == {
        "host_snapshot": base.version,
        "required_snapshot": snapshot.version_name(newer),
    }
    shown = app_client.get(f"/v1/orders/{order['id']}", headers=auth(org_keys["acme"])).json()
    assert shown["status"] == "scheduled"
    with unit_of_work() as session:
        assert order["id"] in flows.due(session, now)  # left for an up-to-date worker
