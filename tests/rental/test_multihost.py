"""The same code on two machines (docs/deploy.md): two hosts, simulated by two RENTAL_HOMEs that
share one PostgreSQL database, one Redis server over TCP and one base snapshot directory, run
two workers and an API each, with one scheduler (beat) for both. One order is sent exactly once
under the carrier's cap, the daily quote budget holds across the two APIs, and a host whose
base is older than the quote's refuses to draw from it.

PostgreSQL only (RENTAL_TEST_DATABASE_URL, as `make test-postgres` sets it): SQLite is one
machine's file. Reduced size by default; RENTAL_MULTIHOST_RECIPIENTS, RENTAL_MULTIHOST_ROWS and
RENTAL_MULTIHOST_CAP make the larger run of issue 16 (200,000 recipients).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text

from tests.service import RENTAL, free_port, own_database

POSTGRES = os.environ.get("RENTAL_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(
    not POSTGRES, reason="several hosts share a PostgreSQL server (RENTAL_TEST_DATABASE_URL)"
)

RECIPIENTS = int(os.environ.get("RENTAL_MULTIHOST_RECIPIENTS", "20000"))
ROWS = int(os.environ.get("RENTAL_MULTIHOST_ROWS", "50000"))
CAP = int(os.environ.get("RENTAL_MULTIHOST_CAP", "2000"))  # messages per second, all hosts
BUDGET = 12  # quotes per organisation per day
# A Tuesday afternoon in Paris: every calendar's send window is open, overseas included.
NOW = "2026-11-03T14:00:00+01:00"
AS_OF = "2026-11-01"
MESSAGE = "Nouvelle collection en boutique cette semaine"
SENDER = "DemoShop"


@dataclass
class Host:
    name: str
    home: Path
    env: dict[str, str]
    url: str = ""
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)

    def start(self, *args: str) -> None:
        with open(self.home / f"{args[0]}-{len(self.procs)}.log", "w") as log:
            self.procs.append(
                subprocess.Popen([*RENTAL, *args], env=self.env, stdout=log, stderr=log)
            )


@dataclass
class Cluster:
    a: Host
    b: Host
    shared_base: Path
    database_url: str
    client: str  # a client key of the organisation that orders
    manager: str  # an account manager's key


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*RENTAL, *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _redis_server(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Redis server on a TCP port of 127.0.0.1, as a shared one would be on a network."""
    port = free_port()
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    assert binary, "redis-server is needed (tools/system-packages.sh redis-server)"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.exceptions.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)


def _shared_settings(redis_url: str) -> dict[str, str]:
    """What every host is given alike: the shared servers, the secrets, the cap, the clock."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENTAL_")}
    return own_database(env, "multihost") | {
        "RENTAL_REDIS_URL": redis_url,
        "RENTAL_VAULT_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "RENTAL_HMAC_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "RENTAL_NOISE_SECRET": secrets.token_urlsafe(48),
        "RENTAL_CARRIER_RATE_PER_SECOND": str(CAP),
        "RENTAL_DAILY_QUOTE_BUDGET": str(BUDGET),
        "RENTAL_SIMULATOR_RECEIPT_DELAY_SECONDS": "0",
        "RENTAL_WORKER_METRICS_PORT": "0",  # four workers on one machine
        "RENTAL_TICK_SECONDS": "1",
        "RENTAL_NOW": NOW,
    }


def _host(root: Path, name: str, shared: dict[str, str], base: Path, started: float) -> Host:
    """A host's home: its base directory is the shared one (a mount on a real machine), and
    its clock starts where the other host's does (RENTAL_NOW is per home; see kit/clock.py)."""
    home = root / name
    home.mkdir()
    (home / "base").symlink_to(base)
    (home / "clock.json").write_text(
        json.dumps(
            {"now": datetime.fromisoformat(NOW).astimezone(UTC).isoformat(), "started": started}
        )
    )
    return Host(name, home, shared | {"RENTAL_HOME": str(home)})


def _wait_ready(host: Host) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"{host.url}/v1/health", timeout=5)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"the API of {host.name} did not start"
            assert all(p.poll() is None for p in host.procs), f"a process of {host.name} died"
            time.sleep(0.3)


def _keys(env: dict[str, str]) -> tuple[str, str]:
    printed = _run(env, "demo-accounts", "--organisation", "Shop")
    found = dict(line.split(":", 1) for line in printed.splitlines() if ":" in line)
    client = next(v for k, v in found.items() if k.startswith("client key")).strip()
    manager = next(v for k, v in found.items() if k.startswith("account manager")).strip()
    return client, manager


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    root = tmp_path
    redis_proc, redis_url = _redis_server(root)
    shared = _shared_settings(redis_url)
    base = root / "shared-base"  # generated once, read by both hosts
    base.mkdir()
    started = time.time()
    a = _host(root, "host-a", shared, base, started)
    b = _host(root, "host-b", shared, base, started)
    hosts = (a, b)
    try:
        _run(a.env, "base", "generate", "--rows", str(ROWS), "--seed", "16", "--as-of", AS_OF)
        client, manager = _keys(a.env)  # migrates the database first, once
        for h in hosts:
            port = free_port()
            h.url = f"http://127.0.0.1:{port}"
            h.start("serve", "--port", str(port))
            for _ in range(2):
                h.start("worker", "--concurrency", "1")
        a.start("beat")  # one scheduler for all hosts (docs/deploy.md)
        for h in hosts:
            _wait_ready(h)
        yield Cluster(a, b, base, shared["RENTAL_DATABASE_URL"], client, manager)
    finally:
        for h in hosts:
            for p in h.procs:
                p.terminate()
        for h in hosts:
            for p in h.procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        redis_proc.terminate()
        redis_proc.wait(10)


def _api(url: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=url + "/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


def _order(c: Cluster, quote_url: str, order_url: str, quantity: int) -> tuple[str, int]:
    """A quote on one host, an order on another; returns the order id and its deposit."""
    with _api(quote_url, c.client) as api:
        quote = api.post("/quotes", json={"age": {"min": 18, "max": 99}})
        assert quote.status_code == 201, quote.text
    with _api(order_url, c.client) as api:
        now = datetime.fromisoformat(api.get("/health").json()["now"])
        order = api.post(
            "/orders",
            json={
                "quote_id": quote.json()["id"],
                "quantity": quantity,
                "message": MESSAGE,
                "sender": SENDER,
                "send_at": now.isoformat(),
            },
        )
        assert order.status_code == 201, order.text
        oid = str(order.json()["id"])
        invoices = api.get("/invoices", params={"order_id": oid}).json()["items"]
    deposit = next(i for i in invoices if i["kind"] == "deposit")
    return oid, int(deposit["amount_incl_vat_cents"])


def _pay(c: Cluster, url: str, oid: str, cents: int) -> httpx.Response:
    with _api(url, c.manager) as api:
        return api.post(
            f"/orders/{oid}/payments", json={"reference": f"MH-{oid[:8]}", "amount_cents": cents}
        )


def _wait_sent(c: Cluster, oid: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with _api(c.b.url, c.client) as api:
        while True:
            order: dict[str, Any] = api.get(f"/orders/{oid}").json()
            if order["status"] in ("sent", "reported", "closed", "on_hold", "cancelled"):
                return order
            assert time.monotonic() < deadline, f"not sent within {timeout:.0f} s: {order}"
            time.sleep(1)


def _ledger(c: Cluster, oid: str) -> list[Any]:
    engine = create_engine(c.database_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT id, prospect_id, status, submitted_at FROM dispatch_recipients"
                        " WHERE order_id = :o"
                    ),
                    {"o": oid},
                )
            )
    finally:
        engine.dispose()


def _received(host: Host) -> Counter[int]:
    """The ledger references the simulated carrier received from this host's workers."""
    log = host.home / "simulator" / "submitted.log"
    return Counter(int(line) for line in log.read_text().split()) if log.exists() else Counter()


def test_two_hosts_share_one_database_one_redis_and_one_base(cluster: Cluster) -> None:
    """One test, so that xdist starts the seven processes once (parts in this order)."""
    _one_order_is_sent_once_within_the_shared_cap(cluster)
    _the_daily_quote_budget_holds_across_both_apis(cluster)
    _a_host_with_an_older_base_refuses_to_draw_and_says_why(cluster)


def _one_order_is_sent_once_within_the_shared_cap(c: Cluster) -> None:
    oid, deposit = _order(c, c.a.url, c.b.url, RECIPIENTS)
    paid = _pay(c, c.a.url, oid, deposit)
    assert paid.status_code in (200, 201), paid.text
    order = _wait_sent(c, oid, timeout=60 + 2 * RECIPIENTS / CAP)
    assert order["status"] in ("sent", "reported", "closed"), order

    rows = _ledger(c, oid)
    # Every recipient once, and as many as ordered within the 10% rule (never above).
    assert 0.9 * RECIPIENTS <= len(rows) <= RECIPIENTS
    assert len({r.prospect_id for r in rows}) == len(rows)
    assert all(r.submitted_at is not None for r in rows), Counter(r.status for r in rows)
    # The carrier received each message once, from workers of both hosts.
    by_host = [_received(c.a), _received(c.b)]
    received = by_host[0] + by_host[1]
    assert all(received[r.id] == 1 for r in rows)
    assert max(received.values()) == 1  # nor any other message twice
    assert all(by_host), [sum(h.values()) for h in by_host]

    # The cap is one Redis schedule shared by the four workers: each chunk books its share of
    # a second after the previous one. The rate is the slope of the messages booked before each
    # chunk against the instant the chunk was recorded (a chunk is recorded at one instant):
    # a fit over every chunk, so that one chunk recorded late does not move it.
    chunks = sorted(Counter(r.submitted_at.timestamp() for r in rows).items())
    booked = list(itertools.accumulate((n for _, n in chunks[:-1]), initial=0))
    rate = statistics.linear_regression([t for t, _ in chunks], booked).slope
    sys.stderr.write(f"multihost: {len(rows)} sent at {rate:.1f}/s under a cap of {CAP}/s\n")
    assert rate <= CAP * 1.01, f"{rate:.1f}/s"
    assert rate >= CAP * 0.8, f"{rate:.1f}/s"  # the cap, not the workers, set the pace


def _quote(url: str, key: str, i: int) -> httpx.Response:
    body = {"age": {"min": 18 + i % 40, "max": 99}}
    with _api(url, key) as api:
        while True:
            r = api.post("/quotes", json=body)
            if r.status_code != 503:
                return r
            time.sleep(float(r.headers["retry-after"]))


def _the_daily_quote_budget_holds_across_both_apis(c: Cluster) -> None:
    env = c.a.env
    _run(env, "accounts", "add-organisation", "Tracker")
    key = json.loads(_run(env, "accounts", "add-key", "--organisation", "Tracker"))["key"]
    urls = [c.a.url, c.b.url]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: _quote(urls[i % 2], key, i), range(3 * BUDGET)))
    assert Counter(r.status_code for r in answers) == {201: BUDGET, 429: 2 * BUDGET}
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"] == "quote_budget_exhausted"


def _a_host_with_an_older_base_refuses_to_draw_and_says_why(c: Cluster) -> None:
    # Host B keeps a copy of today's snapshot while the shared directory moves on: its base
    # directory is pointed at the copy (what a host that missed a refresh has).
    copy = c.b.home / "base-copy"
    shutil.copytree(c.shared_base, copy, symlinks=True)
    link = c.b.home / "base"
    try:
        tmp = c.b.home / "base.new"
        tmp.symlink_to(copy)
        tmp.replace(link)
        _run(c.a.env, "base", "refresh", "--out", str(c.shared_base))
        newer = (c.shared_base / "CURRENT").read_text().strip()
        older = (copy / "CURRENT").read_text().strip()
        assert newer != older

        oid, deposit = _order(c, c.a.url, c.b.url, 500)  # counted on host A's newer base
        refused = _pay(c, c.b.url, oid, deposit)  # host B would draw from its older one
        assert refused.status_code == 503, refused.text
        body = refused.json()
        assert body["error"] == "stale_snapshot"
        assert body["host_snapshot"] == older
        assert body["required_snapshot"] == newer
        assert "copy the newer snapshot" in body["detail"]
        with _api(c.a.url, c.client) as api:
            assert api.get(f"/orders/{oid}").json()["status"] == "awaiting_deposit"

        # Recorded on the up-to-date host, the same payment confirms the order.
        assert _pay(c, c.a.url, oid, deposit).status_code in (200, 201)
        with _api(c.a.url, c.client) as api:
            assert api.get(f"/orders/{oid}").json()["status"] != "awaiting_deposit"
    finally:
        tmp = c.b.home / "base.new"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(c.shared_base)
        tmp.replace(link)
