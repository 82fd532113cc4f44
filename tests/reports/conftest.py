"""An order sent in process (no worker), with a known mix of outcomes: the test stands in for
the worker and the carrier, as tests/dispatch/test_flows.py does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from dispatch import windows
from tests import isolation
from tests.conftest import ScanningClient
from tests.factories import SentOrder, at_send_time, scheduled_order, send_in_process

CRITERIA = {"departments": ["56", "972"]}
QUANTITY = 1500


@pytest.fixture(scope="session")
def sent_order_template(
    app_client: ScanningClient, org_keys: dict[str, str], base_numbers: list[str]
) -> SentOrder:
    """A database where Acme's order of 1,500 recipients in Morbihan and Martinique is sent,
    with 110 STOP replies and 105 STOP-link visits, and two control numbers riding along:
    made once, cloned for each test that asks for `sent_order`."""
    made = isolation.Home.new("template", "sent")
    with made.pointed_at(control_numbers=base_numbers[:2]):
        order = scheduled_order(app_client, org_keys, CRITERIA, QUANTITY)
        # When the windows of Martinique (UTC-4) and of metropolitan France are both open.
        # Three minutes in: submissions and receipts fall inside the series' buckets, not on
        # their edges (where a bucket rounded to the nearest would look right).
        start = windows.next_opening(windows.calendar_of("972"), at_send_time(order))
        start += timedelta(minutes=3)
        assert windows.is_open(windows.calendar_of("56"), start)
        sent = send_in_process(order["id"], start, stops=(110, 105))
    isolation.DATABASES.freeze(made.path, "sent")
    return sent


@pytest.fixture
def sent_order(
    sent_order_template: SentOrder, home: isolation.Home, base_numbers: list[str]
) -> SentOrder:
    """This test's database holds the sent order of `sent_order_template` (and the control
    numbers stay configured, as when it was sent)."""
    home.restore("sent")
    isolation.override({"control_numbers": base_numbers[:2]})
    return sent_order_template


def walk_counts(doc: Any, path: str = "") -> Iterator[tuple[str, int]]:
    """Every integer of a report document that is a count of people (not money, not k)."""
    skip = ("cents", "minimum_count", "bucket_minutes", "pauses", "quantity_ordered")
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from walk_counts(value, f"{path}.{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from walk_counts(value, f"{path}[{i}]")
    elif isinstance(doc, int) and not isinstance(doc, bool):
        if not any(s in path for s in skip):
            yield path, doc
