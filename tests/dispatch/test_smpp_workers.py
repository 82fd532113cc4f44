"""An order confirmed through the API, sent by real `rental worker` and `rental beat`
processes through the SMPP carrier to the test SMSC on 127.0.0.1: every recipient's handset
gets the whole (two-part) message once, and the receipts of both parts come back over the
receiver bind to settle the ledger."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from tests.conftest import Canary, ScanningClient
from tests.dispatch.smsc import TestSmsc
from tests.dispatch.test_workers import METRO, ledger, running, settings_at, wait_for
from tests.rental.factories import create_order, create_quote, pay_deposit

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
        # Orders left due by earlier tests of the session go out too: only this one counts.
        handsets = [m for m in smsc.messages() if m[1].startswith("Grande braderie")]
    assert sent["status"] == "sent"
    assert len(handsets) == 120  # everyone, once, whole
    assert max(Counter(d for d, *_ in handsets).values()) == 1
    assert {parts for _, _, parts, _ in handsets} == {2}
    assert sum(1 for s in smsc.submissions if s.message_id is None) == 15  # throttled, retried
    counts = ledger(order["id"])
    failed = sum(1 for d, *_ in handsets if d.endswith("7"))
    assert counts["submitted"] == 0  # every receipt came back and was applied
    assert counts["failed"] == failed
    assert counts["delivered"] == 120 - failed
    assert "receiver" in smsc.binds
    assert canary.hits(logs) == []  # no number or prospect id in any worker or beat log line
