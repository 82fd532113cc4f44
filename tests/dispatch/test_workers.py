"""Real `rental worker` and `rental beat` processes on a real Redis server, sending orders
through the simulator: once per recipient, inside the windows, surviving a killed worker.

The workers' clock starts (RENTAL_NOW) at a weekday 10:00 in Paris after the orders' send
times: metropolitan windows are open, the Antilles' (05:00 there) are not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatch import windows
from dispatch.models import Recipient
from dispatch.repository import LedgerRepository
from kit.clock import PARIS
from kit.db import unit_of_work
from kit.settings import get_settings
from segmentation.models import ContactEvent
from tests.conftest import Canary, ScanningClient, auth
from tests.factories import create_order, create_quote, pay_deposit

RENTAL = str(Path(sys.executable).parent / "rental")
METRO = {"regions": ["11", "84"]}


def open_instant() -> datetime:
    """A weekday 10:00 in Paris, at least four days ahead, open for metropolitan France."""
    day = datetime.now(PARIS).date() + timedelta(days=4)
    while True:
        at = datetime(day.year, day.month, day.day, 10, tzinfo=PARIS)
        if windows.is_open(windows.calendar_of("75"), at) and day.weekday() < 5:
            return at
        day += timedelta(days=1)


class Workers:
    def __init__(self, tmp: Path, **settings: str) -> None:
        self.tmp = tmp
        self.env = dict(os.environ, **{f"RENTAL_{k.upper()}": v for k, v in settings.items()})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, verb: str) -> None:
        with open(self.tmp / f"{verb}.log", "ab") as log:  # the child keeps its own copy
            self.procs[verb] = subprocess.Popen(
                [RENTAL, verb] if verb == "beat" else [RENTAL, verb, "--concurrency", "2"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, verb: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(verb)
        try:
            os.killpg(proc.pid, sig)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.tmp.glob("*.log"))


@contextmanager
def running(tmp: Path, **settings: str) -> Iterator[Workers]:
    w = Workers(tmp, **settings)
    w.start("worker")
    w.start("beat")
    try:
        yield w
    finally:
        for verb in list(w.procs):
            w.kill(verb)


def status(client: ScanningClient, key: str, order_id: str) -> dict[str, Any]:
    return dict(client.get(f"/v1/orders/{order_id}", headers=auth(key)).json())


def wait_for(
    client: ScanningClient, key: str, order_id: str, wanted: str, seconds: float
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        order = status(client, key, order_id)
        if order["status"] == wanted:
            return order
        time.sleep(1)
    raise AssertionError(f"order still {order['status']} after {seconds} s")


def ledger(order_id: str) -> Counter[str]:
    with unit_of_work() as session:
        rows = session.execute(
            select(Recipient.status, func.count())
            .where(Recipient.order_id == order_id)
            .group_by(Recipient.status)
        )
        return Counter({s: n for s, n in rows})


def submitted_refs(order_id: str) -> Counter[int]:
    """How many times the simulator received each recipient of the order."""
    with unit_of_work() as session:
        ids = set(session.scalars(select(Recipient.id).where(Recipient.order_id == order_id)))
    path = get_settings().home / "simulator" / "submitted.log"
    if not path.exists():
        return Counter()
    return Counter(r for r in map(int, path.read_text().split()) if r in ids)


def _ids(order_id: str) -> list[int]:
    with unit_of_work() as session:
        return list(session.scalars(select(Recipient.id).where(Recipient.order_id == order_id)))


def paid_order(client: ScanningClient, keys: dict[str, str], criteria: Any, n: int) -> str:
    quote = create_quote(client, keys["acme"], criteria)
    order = create_order(client, keys["acme"], quote, quantity=n)
    assert pay_deposit(client, keys["acme"], keys["am"], order["id"]).status_code == 201
    return str(order["id"])


def settings_at(hours_later: int = 0, **more: str) -> dict[str, str]:
    """The workers' settings, their clock starting at `hours_later` past the open instant (a
    new start: the clock runs from there when the workers start)."""
    start = open_instant() + timedelta(hours=hours_later)
    return {
        "now": start.isoformat(),
        "tick_seconds": "0.5",
        "simulator_receipt_delay_seconds": "0.5",
        **more,
    }


@pytest.fixture
def clock_settings() -> dict[str, str]:
    return settings_at()


def test_an_order_is_sent_once_inside_its_windows(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    canary: Canary,
    tmp_path: Path,
    clock_settings: dict[str, str],
    base_numbers: list[str],
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    metro = paid_order(app_client, org_keys, METRO, 400)
    mixed = paid_order(app_client, org_keys, {"departments": ["971", "972", "06"]}, 300)
    control = json.dumps(base_numbers[:1])  # a control number rides along, outside the bill
    with running(tmp_path, **clock_settings, control_numbers=control) as workers:
        sent = wait_for(app_client, acme, metro, "sent", 90)
        deadline = time.monotonic() + 30  # delivery receipts follow the submissions
        while time.monotonic() < deadline and ledger(metro)["submitted"]:
            time.sleep(0.5)
        # The order mixing the Riviera with the Antilles: the Riviera's wave is sent, the
        # Antilles' waits for 08:00 there, and nothing is submitted before.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waves = {w["calendar"]: w for w in status(app_client, acme, mixed)["waves"]}
            if waves.get("metro", {}).get("status") == "done":
                break
            time.sleep(1)
        logs = workers.logs()
    assert sent["waves"][0]["status"] == "done"
    counts = ledger(metro)
    assert sum(counts.values()) == 401  # the order's 400 and the control number
    with unit_of_work() as session:
        controls = LedgerRepository(session).counts(metro, controls=True)
    assert sum(controls.values()) == 1
    assert "pending" not in controls
    assert counts["pending"] == counts["submitting"] == 0
    assert counts["delivered"] > 300  # the simulator delivers about 92%
    refs = submitted_refs(metro)
    assert sum(refs.values()) == 401
    assert max(refs.values()) == 1  # nobody received two messages
    with unit_of_work() as session:
        contacts = session.scalar(select(func.count()).where(ContactEvent.order_id == metro))
    assert contacts == 400  # every submission is in the contact history
    kinds = [
        i["kind"]
        for i in app_client.get(
            "/v1/invoices", params={"order_id": metro}, headers=auth(acme)
        ).json()["items"]
    ]
    assert "balance" in kinds or "credit_note" in kinds
    r = app_client.post(f"/v1/orders/{metro}/dispatch", headers=auth(am))
    assert r.status_code == 409  # one order, one send

    mixed_order = status(app_client, acme, mixed)
    assert mixed_order["status"] == "dispatching"
    antilles = [w for w in mixed_order["waves"] if w["calendar"] in ("971", "972")]
    assert antilles
    for w in antilles:
        assert w["status"] != "done"
        local = datetime.fromisoformat(w["starts_at"]).astimezone(
            windows.calendar_from_key(w["calendar"]).zone
        )
        assert (local.hour, local.minute) == (8, 0)
    with unit_of_work() as session:
        early = session.scalar(
            select(func.count()).where(
                Recipient.order_id == mixed,
                Recipient.calendar.in_(("971", "972")),
                Recipient.status != "pending",
            )
        )
    assert early == 0
    assert canary.hits(logs) == []  # no number or prospect id in any worker or beat log line


def test_a_worker_killed_mid_batch_loses_nobody_and_sends_nobody_twice(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    tmp_path: Path,
    clock_settings: dict[str, str],
) -> None:
    acme = org_keys["acme"]
    order = paid_order(app_client, org_keys, METRO, 300)
    settings = dict(clock_settings, carrier_rate_per_second="40", dispatch_stale_seconds="3")
    with running(tmp_path, **settings) as workers:
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and sum(n for s, n in ledger(order).items() if s != "pending") < 60
        ):
            time.sleep(0.2)
        workers.kill("worker", signal.SIGKILL)  # in the middle of a batch
        stopped = ledger(order)
        assert stopped["pending"] > 0
        workers.start("worker")
        wait_for(app_client, acme, order, "sent", 90)
    counts = ledger(order)
    assert counts["pending"] == counts["submitting"] == 0
    assert sum(counts.values()) == 300  # none silently lost: every recipient has an outcome
    refs = submitted_refs(order)
    assert max(refs.values()) == 1  # nobody received two messages
    # Whoever was in flight when the worker died is reported unknown (it may or may not have
    # reached the network) and never resent; everyone else has the carrier's answer.
    with unit_of_work() as session:
        unknown = set(
            session.scalars(
                select(Recipient.id).where(
                    Recipient.order_id == order, Recipient.status == "unknown"
                )
            )
        )
    assert len(unknown) <= 2 * 40  # at most the chunks in flight at the kill
    assert set(refs) | unknown == set(_ids(order))


def carrier_status(client: ScanningClient, key: str, name: str) -> dict[str, Any]:
    """The carrier's line of GET /v1/carriers/status (account managers)."""
    return next(
        s for s in client.get("/v1/carriers/status", headers=auth(key)).json() if s["name"] == name
    )


def carrier_events(client: ScanningClient, key: str, order_id: str) -> list[dict[str, Any]]:
    return [e for e in status(client, key, order_id)["events"] if e["action"].startswith("carrier")]


def test_a_carrier_down_for_a_while_then_back(
    app_client: ScanningClient, org_keys: dict[str, str], tmp_path: Path
) -> None:
    am = org_keys["am"]
    settings = settings_at(2)
    down_until = datetime.fromisoformat(settings["now"]) + timedelta(seconds=20)
    settings["simulator_down_until"] = down_until.isoformat()
    order = paid_order(app_client, org_keys, METRO, 150)
    with running(tmp_path, **settings) as workers:
        # While it is down, people see it: on the order, in the status, in the health check.
        started = time.monotonic()
        while not carrier_events(app_client, am, order):
            assert time.monotonic() - started < 60, "no event on the order within a minute"
            time.sleep(0.5)
        down = carrier_status(app_client, am, "simulator")
        health = app_client.get("/v1/health").json()
        wait_for(app_client, org_keys["acme"], order, "sent", 90)
        logs = workers.logs()
    assert down["state"] == "unavailable"
    assert down["last_error"] == "the simulated carrier is down"
    assert (health["status"], health["carrier"]["state"]) == ("degraded", "unavailable")
    assert logs.count("carrier unavailable (") >= 2  # it waited, and tried again...
    events = carrier_events(app_client, am, order)
    # ...but the order says it once, and once that the carrier is back.
    assert [e["action"] for e in events] == ["carrier_unavailable", "carrier_recovered"]
    assert events[0]["details"]["last_error"] == "the simulated carrier is down"
    back = carrier_status(app_client, am, "simulator")
    assert back["state"] == "ok"
    assert datetime.fromisoformat(back["since"]) >= down_until
    assert app_client.get("/v1/health").json()["status"] == "ok"
    counts = ledger(order)
    assert counts["pending"] == counts["submitting"] == counts["unknown"] == 0  # ...and resumed
    refs = submitted_refs(order)
    assert sum(refs.values()) == 150
    assert max(refs.values()) == 1


def test_redis_restarted_mid_order(
    app_client: ScanningClient, org_keys: dict[str, str], tmp_path: Path
) -> None:
    settings = settings_at(
        3, carrier_rate_per_second="40", dispatch_stale_seconds="3", dispatch_reenqueue_seconds="3"
    )
    order = paid_order(app_client, org_keys, METRO, 240)
    pid_file = get_settings().home / "redis" / "redis.pid"
    with running(tmp_path, **settings):
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and sum(n for s, n in ledger(order).items() if s != "pending") < 40
        ):
            time.sleep(0.2)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)  # Redis dies mid-order
        wait_for(app_client, org_keys["acme"], order, "sent", 120)
    counts = ledger(order)
    assert counts["pending"] == counts["submitting"] == 0
    refs = submitted_refs(order)
    assert max(refs.values()) == 1
    assert sum(refs.values()) + counts["unknown"] >= 240
