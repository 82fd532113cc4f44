"""Load: 200 concurrent clients for 60 s on a real `rental serve` process (issue 11).

Each client loops on one of its organisation's keys: a quote on random criteria (60%), an order
read (25%) or a report download (15%, JSON). The daily quote budget is set low enough that the
organisations reach it during the run, so the 429 path is exercised under load too. Each of
the 8 organisations has an order sent three hours before to 20,000 people: its ledger (the
report) and the contact history it leaves, so every quote leaves out 160,000 people for contact
pressure, as after a day of sends.

Measured: answers by status, p50/p99 latency per kind of request (admitted ones and all), the
503s and 429s that came without Retry-After, and afterwards, per organisation, the quotes the
database holds against the budget (never above it) and against the 201s the clients saw.

Baseline in the same run: the same clients on `GET /v1/criteria/communes` (authenticated, no
count, no write) for the same time: the floor of a request through the stack under this load.

    python -m bench.load --rows 1000000                 # SQLite (a fresh database file)
    python -m bench.load --rows 1000000 --postgres      # a throwaway PostgreSQL cluster
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.common import RENTAL, ROOT, emit, ensure_base, env_for
from bench.http import free_port

ORGANISATIONS = 8
BUDGET = 100  # per organisation and day: 8 x 100 quotes, fewer than the run serves
REPORT_RECIPIENTS = 20_000


def _criteria(rng: random.Random, departments: list[str]) -> dict[str, Any]:
    """Criteria a marketer might pick: a few departments, sometimes an age range or a sex."""
    body: dict[str, Any] = {"departments": rng.sample(departments, rng.randint(1, 4))}
    if rng.random() < 0.5:
        low = rng.randint(18, 60)
        body["age"] = {"min": low, "max": low + rng.randint(5, 30)}
    if rng.random() < 0.3:
        body["sex"] = [rng.choice(["F", "M"])]
    return body


def _setup(env: dict[str, str]) -> dict[str, Any]:
    """Organisations, keys, one order awaiting its deposit and one sent order with a ledger
    (for its report) per organisation, made through the services in this process."""
    os.environ.update(env)
    from kit.settings import reset_settings

    reset_settings()
    from bench.report import fill_ledger
    from kit.db import unit_of_work
    from rental.migrations import upgrade
    from sales.accounts import service as accounts
    from sales.accounts.models import Role
    from sales.orders import lifecycle as orders
    from sales.orders.schemas import OrderCreate
    from sales.orders.states import OrderStatus
    from sales.quotes import service as quotes
    from segmentation import runtime
    from segmentation.criteria import Criteria

    upgrade()
    seg = runtime.warm_up()
    out: dict[str, Any] = {"orgs": []}
    for i in range(ORGANISATIONS):
        name = f"Load {i}"
        with unit_of_work() as session:
            accounts.add_organisation(session, name)
            key = accounts.add_key(session, name, Role.client).key
            who = accounts.operator(session, on_behalf_of=name)
            quote = quotes.create_quote(session, who, Criteria.model_validate({}), seg)
            made = []
            for sender in ("LOADOPEN", "LOADSENT"):
                made.append(
                    orders.create_order(
                        session,
                        who,
                        OrderCreate(
                            quote_id=quote.id,
                            quantity=1000,
                            message="Load test",
                            sender=sender,
                            send_at=datetime.now(UTC) + timedelta(days=2),
                        ),
                    )
                )
            sent = made[1]
            sent.status = OrderStatus.sent
            sent.send_at = datetime.now(UTC) - timedelta(hours=3)
            out["orgs"].append(
                {
                    "name": name,
                    "id": who.organisation_id,
                    "key": key,
                    "open": made[0].id,
                    "sent": sent.id,
                }
            )
        fill_ledger(
            sent.id,
            REPORT_RECIPIENTS,
            seed=i,
            offset=i * REPORT_RECIPIENTS,
            sent_at=datetime.now(UTC) - timedelta(hours=3),
            history=True,
        )
    from datasets import reference

    out["departments"] = reference.departments()["code"].to_list()
    return out


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
    }


async def _drive(
    port: int, setup: dict[str, Any], clients: int, seconds: float, floor: bool
) -> dict[str, Any]:
    """`clients` closed-loop clients for `seconds`; each answer timed and classified. aiohttp
    (a C parser) keeps the client's own cost per request well under the server's: on a shared
    2-core machine a heavier client would time its own queue."""
    timings: dict[str, list[float]] = defaultdict(list)  # kind -> seconds (every answer)
    served: dict[str, list[float]] = defaultdict(list)  # kind -> seconds (2xx only)
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    without_retry_after = Counter[int]()
    created: Counter[str] = Counter()  # organisation -> 201s on quotes
    errors: Counter[str] = Counter()
    stop_at = time.monotonic() + seconds

    async def client(n: int, http: aiohttp.ClientSession) -> None:
        rng = random.Random(n)
        org = setup["orgs"][n % len(setup["orgs"])]
        headers = {"Authorization": f"Bearer {org['key']}"}
        while time.monotonic() < stop_at:
            body = None
            if floor:
                kind, method, path = "floor", "GET", "/v1/criteria/communes?search=nice"
            else:
                u = rng.random()
                if u < 0.60:
                    kind, method, path = "quote", "POST", "/v1/quotes"
                    body = _criteria(rng, setup["departments"])
                elif u < 0.85:
                    kind, method, path = "order", "GET", f"/v1/orders/{org['open']}"
                else:
                    kind, method, path = "report", "GET", f"/v1/orders/{org['sent']}/report"
            t = time.perf_counter()
            try:
                async with http.request(method, path, json=body, headers=headers) as r:
                    await r.read()
                    status, retry_after = r.status, r.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1
                continue
            elapsed = time.perf_counter() - t
            timings[kind].append(elapsed)
            statuses[kind][status] += 1
            if status < 300:
                served[kind].append(elapsed)
            if status in (429, 503) and retry_after is None:
                without_retry_after[status] += 1
            if kind == "quote" and status == 201:
                created[org["name"]] += 1
            if status in (429, 503):
                # A well-behaved client waits as told (capped: the run is short).
                wait = float(retry_after or 1)
                await asyncio.sleep(min(wait, 1.0) * rng.uniform(0.5, 1.5))

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        f"http://127.0.0.1:{port}",
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=120),
    ) as http:
        await asyncio.gather(*(client(n, http) for n in range(clients)))
    return {
        "latency_all": {k: _percentiles(v) for k, v in sorted(timings.items())},
        "latency_served": {k: _percentiles(v) for k, v in sorted(served.items())},
        "statuses": {k: dict(sorted(c.items())) for k, c in sorted(statuses.items())},
        "5xx_other_than_503": sum(
            n for c in statuses.values() for s, n in c.items() if s >= 500 and s != 503
        ),
        "429_503_without_retry_after": sum(without_retry_after.values()),
        "transport_errors": dict(errors),
        "quotes_created_seen": dict(created),
    }


def _quotes_in_database(env: dict[str, str], setup: dict[str, Any]) -> dict[str, int]:
    os.environ.update(env)
    from sqlalchemy import func, select

    from kit.db import unit_of_work
    from sales.quotes.models import Quote

    with unit_of_work() as session:
        rows = dict(
            session.execute(
                select(Quote.organisation_id, func.count()).group_by(Quote.organisation_id)
            ).all()
        )
    # One quote per organisation was made by the setup, through the operator (no budget).
    return {o["name"]: int(rows.get(o["id"], 0)) - 1 for o in setup["orgs"]}


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        server = subprocess.Popen(
            [RENTAL, "serve", "--port", str(port)], env=env, stdout=fh, stderr=subprocess.STDOUT
        )
    deadline = time.time() + 180
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
            return server
        except httpx.TransportError:
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit(f"server did not start: see {log}") from None
            time.sleep(0.5)


def run(rows: int, clients: int, seconds: float, postgres: bool) -> dict[str, Any]:
    ensure_base(rows)
    work = Path(tempfile.mkdtemp(prefix="rental-load-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="rental-load-pg-"))  # given to the postgres user
    if postgres:
        url = subprocess.run(
            [str(ROOT / ".ci" / "postgres"), "start", str(pg_dir)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    else:
        url = f"sqlite:///{work / 'load.db'}"
    env = env_for(rows) | {
        "RENTAL_DATABASE_URL": url,
        "RENTAL_DAILY_QUOTE_BUDGET": str(BUDGET),
    }
    server = None
    try:
        setup = _setup(env)
        port = free_port()
        server = _serve(env, port, work / "serve.log")
        floor = asyncio.run(_drive(port, setup, clients, seconds / 4, floor=True))
        mixed = asyncio.run(_drive(port, setup, clients, seconds, floor=False))
        server.terminate()
        server.wait(60)
        server = None
        in_db = _quotes_in_database(env, setup)
        log = (work / "serve.log").read_text(errors="replace")
    finally:
        if server is not None:
            server.kill()
        if postgres:
            subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", str(pg_dir)], check=False)
    return {
        "rows": rows,
        "database": "postgresql" if postgres else "sqlite",
        "clients": clients,
        "seconds": seconds,
        "budget_per_organisation": BUDGET,
        **mixed,
        "quotes_in_database": in_db,
        "budget_overshot": any(n > BUDGET for n in in_db.values()),
        "database_agrees_with_201s": in_db
        == {o["name"]: mixed["quotes_created_seen"].get(o["name"], 0) for o in setup["orgs"]},
        "baseline_floor": {"latency_all": floor["latency_all"], "statuses": floor["statuses"]},
        "server_log_tracebacks": log.count("Traceback"),
        "server_log_logging_errors": log.count("Logging error"),
        "target": "no 500; quotes p99 < 1 s at 1M (saturation answered 503 + Retry-After)",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--postgres", action="store_true")
    a = ap.parse_args()
    doc = run(a.rows, a.clients, a.seconds, a.postgres)
    emit(f"load_{a.rows}_{doc['database']}", doc)


if __name__ == "__main__":
    main()
