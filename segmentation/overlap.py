"""How far apart two segments are: |A xor B|, the number of eligible prospects in one and not
the other, counted exactly in DuckDB. For the broker's audit of quotes (sales/quotes/audit.py),
never shown to a customer.

Each segment is compiled to its predicate (bound parameters, as for a count); the segments are
intersected by combining predicates, so no prospect id leaves DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy.orm import Session

from kit.db import unit_of_work
from segmentation.compiler import compile_criteria
from segmentation.criteria import Criteria
from segmentation.engine import Engine
from segmentation.repository import ExclusionReadRepository
from segmentation.runtime import Segmenter


def symmetric_differences(
    engine: Engine, criteria: Criteria, others: Sequence[Criteria], today: date
) -> list[int]:
    """|A xor B| = |A| + |B| - 2 |A and B| for A = `criteria` and each B of `others`, over the
    prospects eligible in the engine's current state (call `sync_eligibility` first)."""
    if not others:
        return []
    a = compile_criteria(criteria, today, engine.layout)
    bs = [compile_criteria(b, today, engine.layout) for b in others]
    # |A| and every |A and B| in one scan of A's rows (A's predicate prunes it, as a count's
    # does), then each |B| pruned alike: on a base sorted by place, far cheaper than testing
    # every predicate on every row. Column names are ours; every value is bound.
    shared = ", ".join(f"count(*) FILTER (WHERE {b.where()})" for b in bs)
    cur = engine.cursor()
    try:
        (row,) = cur.execute(
            f"SELECT count(*), {shared} FROM attributes WHERE {a.where()}",  # noqa: S608
            [p for b in bs for p in b.params] + a.params,
        ).fetchall()
        sizes = [
            cur.execute(
                f"SELECT count(*) FROM attributes WHERE {b.where()}",  # noqa: S608
                b.params,
            ).fetchall()[0][0]
            for b in bs
        ]
    finally:
        cur.close()
    size_a, both = int(row[0]), [int(n) for n in row[1:]]
    return [size_a + int(size_b) - 2 * n for size_b, n in zip(sizes, both, strict=True)]


def differences(
    seg: Segmenter, criteria: Criteria, others: Sequence[Criteria], now: datetime
) -> list[int]:
    """`symmetric_differences` on the current eligibility (opt-outs, pressure, reservations
    brought up to date first, as a count does), ages on the day of `now` in Paris."""
    with seg.lock:
        with unit_of_work() as session:
            today = seg.refresh_eligibility(session, now)
            # Their exclusion files loaded; a deleted one is left out.
            criteria = _without_missing_files(session, criteria, seg.version)
            others = [_without_missing_files(session, c, seg.version) for c in others]
            for c in (criteria, *others):
                seg.load_exclusions(session, c)
        return symmetric_differences(seg.engine, criteria, others, today)


def _without_missing_files(session: Session, criteria: Criteria, version: str) -> Criteria:
    """The criteria with only the exclusion files that still exist (and are matched with this
    snapshot): a deleted file excludes nobody any more, and an audit must not fail on it."""
    if not criteria.exclusion_files:
        return criteria
    found = ExclusionReadRepository(session).revisions(criteria.exclusion_files, version)
    kept = [f for f in criteria.exclusion_files if found.get(f, ("", False))[1]]
    return criteria.model_copy(update={"exclusion_files": kept or None})
