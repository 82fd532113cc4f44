"""How far apart two segments are: |A xor B|, the number of eligible prospects in one and not
the other, counted exactly in DuckDB. For the broker's audit of quotes (sales/quotes/audit.py),
never shown to a customer.

Each segment is compiled to its predicate (bound parameters, as for a count) and evaluated as
one boolean column of the same scan: one pass over the base compares a segment with many others.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from kit.db import unit_of_work
from segmentation.compiler import compile_criteria
from segmentation.criteria import Criteria
from segmentation.engine import Engine
from segmentation.runtime import Segmenter


def symmetric_differences(
    engine: Engine, criteria: Criteria, others: Sequence[Criteria], today: date
) -> list[int]:
    """|A xor B| for A = `criteria` and each B of `others`, over the prospects eligible in the
    engine's current state (call `sync_eligibility` first), in one scan."""
    if not others:
        return []
    columns: list[str] = []
    params: list[Any] = []
    for i, c in enumerate((criteria, *others)):
        sql = compile_criteria(c, today, engine.layout)
        # A predicate may be NULL on a missing value: that prospect is not in the segment.
        columns.append(f"coalesce({sql.where()}, FALSE) AS s{i}")
        params.extend(sql.params)
    counts = ", ".join(f"count(*) FILTER (WHERE s0 <> s{i})" for i in range(1, len(others) + 1))
    # Column names are ours; every value is bound.
    query = f"SELECT {counts} FROM (SELECT {', '.join(columns)} FROM attributes)"  # noqa: S608
    cur = engine.cursor()
    try:
        (row,) = cur.execute(query, params).fetchall()  # an aggregate: always one row
    finally:
        cur.close()
    return [int(n) for n in row]


def differences(
    seg: Segmenter, criteria: Criteria, others: Sequence[Criteria], now: datetime
) -> list[int]:
    """`symmetric_differences` on the current eligibility (opt-outs, pressure, reservations
    brought up to date first, as a count does), ages on the day of `now` in Paris."""
    with seg.lock:
        with unit_of_work() as session:
            today = seg.refresh_eligibility(session, now)
        return symmetric_differences(seg.engine, criteria, others, today)
