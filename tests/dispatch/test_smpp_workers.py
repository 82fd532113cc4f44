"""An order confirmed through the API, sent by real `rental worker` and `rental beat`
processes through the SMPP carrier to the test SMSC on 127.0.0.1: every recipient's handset
gets the whole (two-part) message once, and the receipts of both parts come back over the
receiver bind to settle the ledger. A wrong password shows on the order and in the carrier
status until it is fixed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from kit.settings import Settings
from tests.conftest import Canary, ScanningClient
from tests.dispatch.smsc import TestSmsc
from tests.dispatch.test_workers import (
    METRO,
    carrier_events,
    carrier_status,
    ledger,
    paid_order,
    running,
    settings_at,
    status,
    wait_for,
)
from tests.factories import create_order, create_quote, pay_deposit

LONG = (
    "Grande braderie d'hiver chez ACME : -30% sur les manteaux, -20% sur les bottes et "
    "un cadeau pour tout achat de plus de 50 euros, ce samedi seulement, dans tous nos "
    "magasins de la region."
)


def test_an_order_goes_out_once_through_smpp(
    app_client: ScanningClient, org_keys: dict[str, str], canary: Canary, tmp_path: Path
) -> None:
    acme = org_keys["acme"]
    quote = create_quote(app_client, acme, METRO)
    order = create_order(app_client, acme, quote, quantity=120, message=LONG)
    assert pay_deposit(app_client, acme, org_keys["am"], order["id"]).status_code == 201
    with TestSmsc() as smsc:
        smsc.throttle = 15  # the SMSC pushes back at first: the worker waits and goes on
        smsc.outcome = lambda d: "UNDELIV" if d.endswith("7") else "DELIVRD"
        settings = settings_at(
            4,
            carrier="smpp",
            smpp_host="127.0.0.1",
            smpp_port=str(smsc.port),
            smpp_system_id="rental",
            smpp_password="secret",
        )
        with running(tmp_path, **settings) as workers:
            sent = wait_for(app_client, acme, order["id"], "sent", 90)
            deadline = time.monotonic() + 40  # receipts are taken by dispatch.receive
            while time.monotonic() < deadline and ledger(order["id"])["submitted"]:
                time.sleep(0.5)
            logs = workers.logs()
        handsets = smsc.messages()
    assert sent["status"] == "sent"
    assert len(handsets) == 120  # everyone, once, whole
    assert max(Counter(d for d, *_ in handsets).values()) == 1
    assert {parts for _, _, parts, _ in handsets} == {2}
    assert all(text.startswith("Grande braderie") for _, text, _, _ in handsets)
    assert sum(1 for s in smsc.submissions if s.message_id is None) == 15  # throttled, retried
    counts = ledger(order["id"])
    failed = sum(1 for d, *_ in handsets if d.endswith("7"))
    assert counts["submitted"] == 0  # every receipt came back and was applied
    assert counts["failed"] == failed
    assert counts["delivered"] == 120 - failed
    assert "receiver" in smsc.binds
    assert canary.hits(logs) == []  # no number or prospect id in any worker or beat log line


def test_a_refused_bind_shows_on_the_order_and_in_the_status_until_fixed(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    tmp_path: Path,
    settings: Callable[..., Settings],
) -> None:
    """A wrong SMPP password: every bind is refused and nothing goes out. Within a minute
    the order says why (account managers) and the carrier status and health check say the
    carrier is unavailable; once the operator fixes the password, it is sent."""
    acme, am = org_keys["acme"], org_keys["am"]
    order = paid_order(app_client, org_keys, {"departments": ["21"]}, 100)
    settings(carrier="smpp")  # what the API processes are configured with
    with TestSmsc() as smsc:
        smsc.password = "right"
        smpp = settings_at(
            5,
            carrier="smpp",
            smpp_host="127.0.0.1",
            smpp_port=str(smsc.port),
            smpp_system_id="rental",
            smpp_password="wrong",
        )
        with running(tmp_path, **smpp) as workers:
            started = time.monotonic()
            while not carrier_events(app_client, am, order):
                assert time.monotonic() - started < 60, "no event on the order in a minute"
                time.sleep(0.5)
            # The batch is tried again, with back-off (and refused again).
            smsc.wait(lambda: workers.logs().count("carrier unavailable (") >= 2, 30)
            down = carrier_status(app_client, am, "smpp")
            health = app_client.get("/v1/health").json()
            stuck = status(app_client, acme, order)
        assert smsc.accepted() == []
        with running(tmp_path, **dict(smpp, smpp_password="right")):
            sent = wait_for(app_client, acme, order, "sent", 90)
    events = carrier_events(app_client, am, order)
    back = carrier_status(app_client, am, "smpp")
    assert stuck["status"] == "dispatching"
    assert down["state"] == "unavailable"
    assert "Invalid Password" in down["last_error"]
    assert "RENTAL_SMPP_PASSWORD" in down["last_error"]
    assert (health["status"], health["carrier"]) == (
        "degraded",
        {"name": "smpp", "state": "unavailable", "since": down["since"]},
    )
    # Once when the trouble started, once when it ended: not one per refused bind.
    assert [e["action"] for e in events] == ["carrier_unavailable", "carrier_recovered"]
    assert "Invalid Password" in events[0]["details"]["last_error"]
    client_events = [e for e in stuck["events"] if e["action"] == "carrier_unavailable"]
    assert "last_error" not in client_events[0]["details"]  # the broker's setup, staff only
    assert sent["status"] == "sent"
    assert back["state"] == "ok"
