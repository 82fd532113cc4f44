"""Carrier trouble seen by people, step by step in process: the order says once that its
carrier is unavailable (and once that it is back), account managers read why, and the health
check says the sending is held up. Real workers against a failing carrier:
test_workers.py (the simulator down) and test_smpp_workers.py (a bind refused)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from dispatch import flows
from dispatch.repository import LedgerRepository
from dispatch.tasks import send_batch
from kit.db import unit_of_work
from kit.settings import Settings, get_settings
from tests.conftest import ScanningClient, auth
from tests.dispatch.test_carrier_intake import rental
from tests.factories import started_order

# The SMSC's words as the SMPP adapter words them.
REFUSED = (
    "the SMSC refused the transmitter bind: Invalid Password (status 0x0e): check "
    "RENTAL_SMPP_SYSTEM_ID, RENTAL_SMPP_PASSWORD and RENTAL_SMPP_SYSTEM_TYPE"
)


def carrier_events(client: ScanningClient, key: str, order_id: str) -> list[dict[str, Any]]:
    order = client.get(f"/v1/orders/{order_id}", headers=auth(key)).json()
    return [e for e in order["events"] if e["action"].startswith("carrier_")]


def ledger_counts(order_id: str) -> dict[str, int]:
    with unit_of_work() as session:
        return LedgerRepository(session).counts(order_id)


def status_of(client: ScanningClient, key: str, carrier: str) -> dict[str, Any]:
    r = client.get("/v1/carriers/status", headers=auth(key))
    assert r.status_code == 200, r.text
    return next(s for s in r.json() if s["name"] == carrier)


def test_the_order_and_the_status_say_the_carrier_is_unavailable_once_then_back(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    carrier = get_settings().carriers.name  # what the health check reports
    order, now = started_order(app_client, org_keys, {"departments": ["51"]}, 100)
    for i in range(3):  # the first attempt and two retries, all refused
        with unit_of_work() as session:
            flows.carrier_failed(
                session, carrier, REFUSED, now + timedelta(seconds=2**i), order["id"]
            )

    staff_view = carrier_events(app_client, am, order["id"])
    assert [e["action"] for e in staff_view] == ["carrier_unavailable"]  # once, not per retry
    assert staff_view[0]["by"] == "system"
    first = now + timedelta(seconds=1)
    details = staff_view[0]["details"]
    assert details.keys() == {"carrier", "since", "last_error"}
    assert (details["carrier"], details["last_error"]) == (carrier, REFUSED)
    assert datetime.fromisoformat(details["since"]) == first
    # The customer sees that its order waits for the carrier, not how the broker's SMSC
    # account is set up.
    client_view = carrier_events(app_client, acme, order["id"])
    assert client_view[0]["details"].keys() == {"carrier", "since"}
    status = status_of(app_client, am, carrier)
    assert status["state"] == "unavailable"
    assert status["configured"] is True
    assert datetime.fromisoformat(status["since"]) == first  # the first failure of the run
    assert datetime.fromisoformat(status["last_error_at"]) == now + timedelta(seconds=4)
    assert status["last_error"] == REFUSED
    health = app_client.get("/v1/health").json()
    assert health["status"] == "degraded"
    assert health["carrier"]["name"] == carrier
    assert health["carrier"]["state"] == "unavailable"
    assert "last_error" not in health["carrier"]  # anyone may read the health check
    assert app_client.get("/v1/carriers/status", headers=auth(acme)).status_code == 403
    cli = rental("carriers", "status")  # the operator's view, from the same table
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)[0] == status

    back = now + timedelta(seconds=30)
    for i in range(2):  # two chunks go through
        with unit_of_work() as session:
            flows.carrier_answered(session, carrier, back + timedelta(seconds=i), order["id"])
    actions = [e["action"] for e in carrier_events(app_client, am, order["id"])]
    assert actions == ["carrier_unavailable", "carrier_recovered"]
    recovered = carrier_events(app_client, am, order["id"])[1]["details"]
    assert datetime.fromisoformat(recovered["unavailable_since"]) == first
    status = status_of(app_client, am, carrier)
    assert status["state"] == "ok"
    assert datetime.fromisoformat(status["since"]) == back
    assert datetime.fromisoformat(status["last_success_at"]) == back
    assert status["last_error"] == REFUSED  # kept: why it was down last time
    assert app_client.get("/v1/health").json()["status"] == "ok"


def test_a_carrier_that_cannot_be_used_as_configured_says_why(
    app_client: ScanningClient, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    """A setting missing is carrier trouble too: said on the order and in the status, not
    only as a failed task in a worker's log; nothing is claimed meanwhile."""
    am = org_keys["am"]
    order, _ = started_order(app_client, org_keys, {"departments": ["63"]}, 100)
    settings(carrier="http", http_gateway_url=None)
    for _ in range(2):  # the batch enqueued, and enqueued again later
        send_batch(order["id"], 0)  # the task, run in this process
    status = status_of(app_client, am, "http")
    health = app_client.get("/v1/health").json()
    settings(carrier=None)
    assert status["state"] == "unavailable"
    assert status["last_error"] == "RENTAL_HTTP_GATEWAY_URL is not set"
    assert health["carrier"]["state"] == "unavailable"
    events = carrier_events(app_client, am, order["id"])
    assert [e["action"] for e in events] == ["carrier_unavailable"]
    assert events[0]["details"]["last_error"] == "RENTAL_HTTP_GATEWAY_URL is not set"
    assert ledger_counts(order["id"]) == {"pending": 100}
