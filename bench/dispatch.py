"""Dispatch throughput: an order's recipients through real `rental worker` processes and a real
Redis server into the simulator, ledger written (submissions recorded, receipts applied).

Baseline in the same run: Celery itself moving the same number of messages in tasks of 1,000
references that do nothing (the ceiling of the task transport on this machine).

    python -m bench.dispatch --rows 1000000 --quantity 200000
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import signal
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from typing import Any

from bench.common import RENTAL, emit, ensure_base, env_for

PARIS_OPEN = "T10:00:00+01:00"
# Metropolitan France only: at 10:00 in Paris the Antilles' windows are still closed.
METRO_REGIONS = ["11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94"]


def open_day() -> str:
    """The next Tuesday (never a French public holiday's eve trap for a short run)."""
    day = datetime.now().date() + timedelta(days=7)
    while day.weekday() != 1:
        day += timedelta(days=1)
    return day.isoformat() + PARIS_OPEN


def _order(rows: int, quantity: int, env: dict[str, str]) -> tuple[str, float]:
    """Place and pay an order in process; returns its id and the seconds planning took."""
    os.environ.update(env)
    from kit.settings import reset_settings

    reset_settings()
    from kit import clock
    from kit.db import unit_of_work
    from rental.migrations import upgrade
    from sales.accounts import service as accounts
    from sales.orders import lifecycle as orders
    from sales.orders.schemas import OrderCreate
    from sales.quotes import service as quotes
    from segmentation import runtime
    from segmentation.criteria import Criteria

    clock.reset()
    upgrade()
    seg = runtime.warm_up()
    with unit_of_work() as session:
        who = accounts.operator(session)
        quote = quotes.create_quote(
            session, who, Criteria.model_validate({"regions": METRO_REGIONS}), seg
        )
        send_at = clock.now() + timedelta(minutes=1)
        order = orders.create_order(
            session,
            who,
            OrderCreate(
                quote_id=quote.id,
                quantity=min(quantity, quote.shown_count or 0),
                message="Soldes d'hiver : -20% chez ACME",
                sender="ACME",
                send_at=send_at,
            ),
        )
        order_id = order.id
    from sales.invoices import service as invoices
    from sales.orders import payments

    with unit_of_work() as session:
        due = invoices.deposit_of(session, order_id)
        assert due is not None
        payments.record_payment(
            session, who, order_id, f"BENCH-{order_id}", due.amount_incl_vat_cents, None, seg
        )
    return order_id, 0.0


def _status(order_id: str) -> str:
    from kit.db import unit_of_work
    from sales.orders.models import Order

    with unit_of_work() as session:
        order = session.get(Order, order_id)
        return order.status.value if order else "?"


def _started(order_id: str) -> bool:
    """Has a run taken any batch? (One indexed row, not a count over the ledger: the poll must
    not take CPU from the workers it measures. Recipients claimed by watermark stay `pending`
    until recorded, so the batches say it.)"""
    from sqlalchemy import select

    from dispatch.models import Batch
    from kit.db import unit_of_work

    with unit_of_work() as session:
        q = select(Batch.id).where(
            Batch.order_id == order_id, Batch.status.in_(("running", "done"))
        )
        return session.scalar(q.limit(1)) is not None


def _chunk_rate(order_id: str) -> float:
    """Messages per second as the slope over every chunk (as tests/rental/test_multihost.py
    measures a cap): the messages booked before each chunk against the instant the chunk was
    recorded. A first-to-last span counts n messages over one interval fewer than chunks."""
    from sqlalchemy import func, select

    from dispatch.models import Recipient
    from kit.db import unit_of_work

    with unit_of_work() as session:
        chunks = session.execute(
            select(Recipient.submitted_at, func.count())
            .where(Recipient.order_id == order_id, Recipient.submitted_at.is_not(None))
            .group_by(Recipient.submitted_at)
            .order_by(Recipient.submitted_at)
        ).all()
    if len(chunks) < 2:
        return 0.0
    booked = list(itertools.accumulate((int(n) for _, n in chunks[:-1]), initial=0))
    times = [t.timestamp() for t, _ in chunks if t is not None]
    return float(statistics.linear_regression(times, booked).slope)


def _submission_span(order_id: str) -> tuple[int, float]:
    """Messages handed to the carrier and the seconds between the first and the last (the
    ledger's own timestamps, written as each chunk is recorded)."""
    from sqlalchemy import func, select

    from dispatch.models import Recipient
    from kit.db import unit_of_work

    with unit_of_work() as session:
        n, first, last = session.execute(
            select(
                func.count(), func.min(Recipient.submitted_at), func.max(Recipient.submitted_at)
            ).where(Recipient.order_id == order_id, Recipient.submitted_at.is_not(None))
        ).one()
    return int(n), (last - first).total_seconds() if first and last else 0.0


def _receipts_left(order_id: str) -> int:
    from sqlalchemy import func, select

    from dispatch.models import Recipient
    from kit.db import unit_of_work

    with unit_of_work() as session:
        q = select(func.count()).where(
            Recipient.order_id == order_id, Recipient.status == "submitted"
        )
        return int(session.scalar(q) or 0)


def _receipt_span(order_id: str) -> float:
    """Seconds from the first submission to the last delivery receipt applied."""
    from sqlalchemy import func, select

    from dispatch.models import Recipient
    from kit.db import unit_of_work

    with unit_of_work() as session:
        first, last = session.execute(
            select(func.min(Recipient.submitted_at), func.max(Recipient.final_at)).where(
                Recipient.order_id == order_id, Recipient.prospect_id >= 0
            )
        ).one()
    return (last - first).total_seconds() if first and last else 0.0


def _fresh_database(env: dict[str, str]) -> None:
    """Each order starts from an empty service database when it is this home's SQLite file:
    the contact history of earlier runs would otherwise shrink the segment (contact pressure)."""
    if env.get("RENTAL_DATABASE_URL"):
        return  # PostgreSQL: a fresh cluster per run is the caller's
    from kit.db import get_engine

    get_engine().dispose()  # no connection may outlive the file it points at
    db = os.path.join(env["RENTAL_HOME"], "rental.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)


def _run_workers(env: dict[str, str], order_id: str, quantity: int) -> dict[str, Any]:
    procs = [
        subprocess.Popen(  # noqa: S603
            [
                RENTAL,
                verb,
                *(
                    ["--concurrency", "2", "--loglevel", "WARNING"]
                    if verb == "worker"
                    else ["--loglevel", "WARNING"]
                ),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for verb in ("worker", "beat")
    ]
    try:
        first = last = None
        started_plan = time.perf_counter()
        while True:
            if first is None and _started(order_id):
                first = time.perf_counter()
            status = _status(order_id)
            now = time.perf_counter()
            if status == "sent":
                last = now
                break
            if now - started_plan > 3600:
                raise RuntimeError("not sent within an hour")
            time.sleep(0.2)
        assert first is not None
        assert last is not None
        span = _submission_span(order_id)
        # The simulator's receipts follow the submissions: the ledger is complete when the
        # last one is applied (each submission written once more, with its outcome).
        while _receipts_left(order_id) and time.perf_counter() - last < 1800:
            time.sleep(1)
        receipts = _receipt_span(order_id)
        return {
            "plan_s": round(first - started_plan, 2),
            "order_sent_after_s": round(last - started_plan, 2),
            "submissions": span[0],
            "first_to_last_submission_s": round(span[1], 2),
            "messages_per_s": round(span[0] / max(span[1], 1e-9)),
            "messages_per_s_slope": round(_chunk_rate(order_id), 1),
            "first_submission_to_last_receipt_s": round(receipts, 2),
            "messages_per_s_receipts_applied": round(span[0] / max(receipts, 1e-9)),
        }
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def baseline(env: dict[str, str], messages: int, per_task: int = 1000) -> dict[str, Any]:
    """Celery moving `messages` references in no-op tasks of `per_task`, same Redis."""
    script = f"""
import time
from celery import Celery
from kit import redisd
app = Celery("bench", broker=redisd.url())
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=4)
@app.task(name="bench.noop")
def noop(refs):
    return None
if __name__ == "__main__":
    import sys
    if sys.argv[1] == "send":
        t = time.perf_counter()
        for i in range({messages} // {per_task}):
            noop.delay(list(range({per_task})))
        print(time.perf_counter() - t)
    else:
        app.worker_main(["worker", "-c", "2", "--loglevel", "WARNING", "-Q", "celery"])
"""
    path = tempfile.mkdtemp(prefix="bench-noop-")
    module = os.path.join(path, "bench_noop.py")
    with open(module, "w") as f:
        f.write(script)
    benv = dict(env, PYTHONPATH=os.pathsep.join([path, os.getcwd()]))
    python = RENTAL.replace("/rental", "/python")
    t0 = time.perf_counter()
    subprocess.run([python, module, "send"], env=benv, check=True, capture_output=True)  # noqa: S603
    worker = subprocess.Popen(  # noqa: S603
        [python, module, "work"],
        env=benv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis as redis_client

    r = redis_client.Redis(unix_socket_path=os.path.join(env["RENTAL_HOME"], "redis", "redis.sock"))
    try:
        while r.llen("celery") > 0:
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    return {
        "messages": messages,
        "tasks": messages // per_task,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(messages / elapsed),
    }


def run(rows: int, quantity: int, cap: int) -> dict[str, Any]:
    ensure_base(rows)
    out: dict[str, Any] = {"rows": rows, "quantity": quantity}
    for label, rate in (("uncapped", 0), (f"cap_{cap}", cap))[: 2 if cap else 1]:
        env = dict(
            env_for(rows),
            RENTAL_NOW=open_day(),
            RENTAL_TICK_SECONDS="0.5",
            RENTAL_SIMULATOR_RECEIPT_DELAY_SECONDS="1",
            RENTAL_CARRIER_RATE_PER_SECOND=str(rate),
            RENTAL_DAILY_QUOTE_BUDGET="100000",
        )
        n = quantity if not rate else min(quantity, rate * 30)
        _fresh_database(env)
        order_id, _ = _order(rows, n, env)
        out[label] = _run_workers(env, order_id, n) | {"quantity": n, "cap": rate}
    out["baseline_celery_noop"] = baseline(dict(env_for(rows)), quantity)
    out["ratio_to_baseline"] = round(
        out["uncapped"]["messages_per_s"] / out["baseline_celery_noop"]["messages_per_s"], 3
    )
    if cap:
        capped = out[f"cap_{cap}"]
        capped["within_5_percent"] = abs(capped["messages_per_s"] - cap) <= 0.05 * cap
        capped["slope_within_1_percent"] = abs(capped["messages_per_s_slope"] - cap) <= 0.01 * cap
    return out


def ledger_sql(rows: int, quantity: int, receipts_per_tx: int = 20) -> dict[str, Any]:
    """The ledger's SQL alone, in this one process (no worker, no contention, no carrier):
    start (plan), then every chunk of 1,000 claimed, recorded as submitted (carrier-like message
    ids, in no order; each chunk at its own instant) and, in separate
    transactions, given its delivery receipts, one chunk's per transaction and then
    `receipts_per_tx` chunks' per transaction (as the drainer gathers them). Rates per second
    of wall time and per second of this process's CPU time (SQLite works in the process: on a
    shared machine its CPU time is the steadier measure)."""
    ensure_base(rows)
    env = dict(env_for(rows), RENTAL_NOW=open_day(), RENTAL_DAILY_QUOTE_BUDGET="100000")
    _fresh_database(env)
    order_id, _ = _order(rows, quantity, env)
    from dispatch import flows, intake
    from dispatch.carriers.base import Receipt, Submitted
    from dispatch.repository import LedgerRepository
    from kit import clock
    from kit.db import unit_of_work
    from segmentation import runtime

    now = clock.now() + timedelta(minutes=2)

    def message_id(ref: int) -> str:
        """As the simulator makes them: carriers' ids come in no order (the ledger's
        message-id index takes them at random places)."""
        return "sim-" + hashlib.sha256(f"bench|{ref}".encode()).hexdigest()[:20]

    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(label: str, work: Any) -> Any:
        t, c = time.perf_counter(), time.process_time()
        result = work()
        wall[label] = wall.get(label, 0.0) + time.perf_counter() - t
        cpu[label] = cpu.get(label, 0.0) + time.process_time() - c
        return result

    def start() -> None:
        with unit_of_work() as session:
            assert flows.start(session, order_id, runtime.current(), now)

    def claim(number: int) -> Any:
        with unit_of_work() as session:
            return flows.claim(session, order_id, number, "bench", 1000, now)

    def record(claimed: Any, at: datetime) -> None:
        sent = [Submitted(r.id, message_id(r.id), parts=1) for r in claimed[1]]
        with unit_of_work() as session:
            flows.record(session, order_id, claimed[1], sent, at)

    def receipts(part: list[list[Any]], group: int) -> None:
        for i in range(0, len(part), group):
            with unit_of_work() as session:
                intake.apply_receipts(session, [x for c in part[i : i + group] for x in c], now)

    timed("plan", start)
    with unit_of_work() as session:
        numbers = [b.number for b in LedgerRepository(session).batches(order_id)]
    chunks: list[list[Receipt]] = []
    for number in numbers:
        with unit_of_work() as session:
            LedgerRepository(session).claim_batch(order_id, number, now, "bench")
        while (claimed := timed("claim", lambda n=number: claim(n))) is not None:
            # Each chunk recorded at its own instant, as in a run (the contact history's
            # index is by instant, then number).
            at = now + timedelta(milliseconds=20 * len(chunks))
            timed("record", lambda c=claimed, t=at: record(c, t))
            chunks.append([Receipt(message_id(r.id), "delivered") for r in claimed[1]])
        with unit_of_work() as session:
            flows.end_batch(session, order_id, number, "bench")
    n = sum(len(c) for c in chunks)
    half = len(chunks) // 2  # receipts: half one chunk per transaction, half gathered
    timed("receipts_1", lambda: receipts(chunks[:half], 1))
    timed("receipts_n", lambda: receipts(chunks[half:], receipts_per_tx))
    m = sum(len(c) for c in chunks[:half])
    out: dict[str, Any] = {"messages": n, "plan_s": round(wall["plan"], 2)}
    for kind, spent in (("wall", wall), ("cpu", cpu)):
        out[kind] = {
            "claim_per_s": round(n / spent["claim"]),
            "record_per_s": round(n / spent["record"]),
            "claim_and_record_per_s": round(n / (spent["claim"] + spent["record"])),
            "receipts_1_chunk_per_tx_per_s": round(m / spent["receipts_1"]),
            f"receipts_{receipts_per_tx}_chunks_per_tx_per_s": round((n - m) / spent["receipts_n"]),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--quantity", type=int, default=200_000)
    ap.add_argument("--cap", type=int, default=500, help="0: the uncapped run only")
    ap.add_argument("--ledger-sql", action="store_true", help="the ledger's SQL alone, in process")
    a = ap.parse_args()
    if a.ledger_sql:
        emit(f"dispatch_sql_{a.rows}_{a.quantity}", ledger_sql(a.rows, a.quantity))
        return
    emit(f"dispatch_{a.rows}_{a.quantity}", run(a.rows, a.quantity, a.cap))


if __name__ == "__main__":
    main()
