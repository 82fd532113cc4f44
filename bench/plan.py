"""Planning one order at send time, in process: the draw (re-validation and top-up), the
reservations and the ledger with its batches and tallies (`dispatch.flows.start`, committed),
on a fresh service database.

Baseline in the same run: the same ledger rows (read back) inserted by one bare DB-API
executemany of tuples into a copy of the ledger table with the same indexes: the floor of
writing them at all.

    python -m bench.plan --rows 2000000 --quantity 1000000 [--postgres] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from bench.common import ROOT, emit, ensure_base, env_for
from bench.dispatch import _fresh_database, _order, open_day

FLOOR_TABLE = "bench_floor_recipients"


@contextmanager
def throwaway_postgres(enabled: bool) -> Iterator[str | None]:
    """A throwaway cluster (`.ci/postgres`), or None for the home's SQLite file."""
    if not enabled:
        yield None
        return
    script = str(ROOT / ".ci" / "postgres")
    if not os.path.exists(script):
        script = "/work/main/.ci/postgres"
    where = tempfile.mkdtemp(prefix="bench-plan-pg-")
    url = subprocess.run(
        [script, "start", where], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run([script, "stop", where], check=False, capture_output=True)


def _phases() -> dict[str, float]:
    """Seconds spent in each part of the planning, summed over calls: the functions wrapped
    with a timer (their behaviour unchanged)."""
    from dispatch.repository import HmacIndexRepository, LedgerRepository, TallyRepository
    from segmentation.engine import Engine
    from segmentation.repository import ReservationRepository
    from segmentation.runtime import Segmenter

    spent: dict[str, float] = {}
    parts = {
        "draw_sample": (Segmenter, "sample"),
        "reservations_forget": (ReservationRepository, "forget"),
        "reservations_write": (ReservationRepository, "reserve"),
        # The difference written at send time (its deletes and writes; absent before it).
        "reservations_replace": (ReservationRepository, "replace"),
        "departments_of": (Engine, "departments_of"),
        "contacts_of": (Engine, "contacts_of"),
        "ledger_write": (LedgerRepository, "add_recipients"),
        "hmac_index": (HmacIndexRepository, "write"),
        "tallies": (TallyRepository, "plan"),
    }
    for label, (owner, name) in parts.items():
        if not hasattr(owner, name):
            continue  # a part this version does not have (the bench runs on the branch point too)
        spent[label] = 0.0

        def timed(*args: Any, _f: Any = getattr(owner, name), _l: str = label, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return _f(*args, **kw)
            finally:
                spent[_l] += time.perf_counter() - t

        setattr(owner, name, timed)
    return spent


def _start(order_id: str, profile: str | None) -> dict[str, Any]:
    """`dispatch.flows.start` of the paid order, committed, timed (and profiled), with the
    seconds of its main parts."""
    from dispatch import flows
    from kit.db import unit_of_work
    from sales.orders.models import Order
    from segmentation import runtime

    seg = runtime.warm_up()
    with unit_of_work() as session:
        order = session.get(Order, order_id)
        assert order is not None
        assert order.status.value == "scheduled", order.status
        now = order.send_at + timedelta(minutes=1)
    prof = cProfile.Profile() if profile else None
    spent = _phases()
    t = time.perf_counter()
    if prof:
        prof.enable()
    with unit_of_work() as session:
        started = flows.start(session, order_id, seg, now)
        before_commit = time.perf_counter()
    spent["commit"] = time.perf_counter() - before_commit
    if prof and profile:
        prof.disable()
        prof.dump_stats(profile)
    assert started
    return {
        "plan_s": round(time.perf_counter() - t, 2),
        "parts_s": {k: round(v, 2) for k, v in spent.items()},
    }


def _ledger(order_id: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    from sqlalchemy import select

    from dispatch.repository import RECIPIENTS
    from kit.db import unit_of_work

    cols = [c for c in RECIPIENTS.columns if c.name != "id"]
    with unit_of_work() as session:
        rows = session.execute(
            select(*cols).where(RECIPIENTS.c.order_id == order_id).order_by(RECIPIENTS.c.id)
        ).all()
    return [c.name for c in cols], [tuple(r) for r in rows]


def _floor(names: list[str], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The same rows by one bare executemany into a copy of the ledger table (same indexes)."""
    from sqlalchemy import MetaData

    from dispatch.repository import RECIPIENTS
    from kit.db import get_engine

    engine = get_engine()
    copy = RECIPIENTS.to_metadata(MetaData(), name=FLOOR_TABLE)
    # Index and constraint names are per schema on PostgreSQL: the copy's must differ.
    for n, item in enumerate([*copy.indexes, *copy.constraints]):
        item.name = f"{FLOOR_TABLE}_{n}"  # type: ignore[attr-defined]
    copy.create(engine)
    try:
        raw = engine.raw_connection()
        try:
            marks = ", ".join(["%s" if engine.dialect.name == "postgresql" else "?"] * len(names))
            sql = f"INSERT INTO {FLOOR_TABLE} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608
            values = [tuple(v.value if hasattr(v, "value") else v for v in r) for r in rows]
            t = time.perf_counter()
            cur = raw.cursor()
            cur.executemany(sql, values)
            raw.commit()
            seconds = time.perf_counter() - t
        finally:
            raw.close()
    finally:
        copy.drop(engine)
    return {"rows": len(rows), "seconds": round(seconds, 2)}


def run(rows: int, quantity: int, postgres: bool, profile: str | None) -> dict[str, Any]:
    ensure_base(rows)
    out: dict[str, Any] = {"rows": rows, "quantity": quantity, "load_before": os.getloadavg()}
    with throwaway_postgres(postgres) as url:
        env = dict(env_for(rows), RENTAL_NOW=open_day(), RENTAL_DAILY_QUOTE_BUDGET="100000")
        if url:
            env["RENTAL_DATABASE_URL"] = url
        out["database"] = "postgresql" if url else "sqlite"
        _fresh_database(env)
        t = time.perf_counter()
        order_id, _ = _order(rows, quantity, env)
        out["order_and_confirm_s"] = round(time.perf_counter() - t, 2)
        out |= _start(order_id, profile)
        names, ledger = _ledger(order_id)
        out["ledger_rows"] = len(ledger)
        out["baseline_bare_executemany"] = _floor(names, ledger)
        out["ratio_to_baseline"] = round(
            out["plan_s"] / max(out["baseline_bare_executemany"]["seconds"], 1e-9), 2
        )
        from kit.db import get_engine

        get_engine().dispose()
    out["load_after"] = os.getloadavg()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--quantity", type=int, default=1_000_000)
    ap.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster")
    ap.add_argument("--profile", help="write a cProfile of the planning to this file")
    a = ap.parse_args()
    name = f"plan_{a.rows}_{a.quantity}" + ("_postgresql" if a.postgres else "")
    emit(name, run(a.rows, a.quantity, a.postgres, a.profile))


if __name__ == "__main__":
    main()
