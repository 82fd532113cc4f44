"""The report's exact figures from the order's tallies (dispatch.models.OutcomeTally and
PeopleTally: a few hundred rows kept as the ledger is written) instead of its million ledger
rows: the same Aggregates as reports/aggregate.py computes from the ledger, field for field.

The tallies fold each recipient's times into five-minute bins, and every bucket of the report's
series is a whole number of them; the exact first and last instants are kept beside. What the
bins cannot tell is an event after the report's instant (a receipt after a final report's
cutoff, or anything after `now`): then `aggregate` returns None and the report reads the
ledger, as it does for an order planned before the tallies were kept. The age bands are tallied
at planning, as the recipients' age on the send day (an order planned before migration 0014
joins its prospect ids with the current base's birth dates instead), and the opt-outs of the
window are found among the order's recipients by the HMAC index written at planning (an order
planned before migration 0018 looks them up in its contact history: reports/aggregate.opt_outs).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
from sqlalchemy.orm import Session

from dispatch import waves
from dispatch.repository import TALLY_BIN_MS, hmac_prefixes
from dispatch.states import HANDED_OVER
from dispatch.states import RecipientStatus as R
from kit.settings import get_settings
from reports.aggregate import (
    SENT_STATES,
    Aggregates,
    Controls,
    Histogram,
    OutcomeRow,
    SummaryRow,
    _at,
    _final_at,
    _ms,
    ages,
    billed,
    breakdowns,
    bucketing,
    last_event,
    opt_outs,
    possible,
    send_day,
)
from reports.repository import Cell, ReportRepository
from sales.orders.access import quote_of
from sales.orders.models import Order
from segmentation.criteria import Criteria


def _hidden(session: Session, order: Order, mine: list[Cell]) -> list[str]:
    """The calendars whose wave the order's waves hide (see dispatch.waves.ShownWaves)."""
    counts: dict[str, int] = {}
    for c in mine:
        counts[c.calendar] = counts.get(c.calendar, 0) + c.n
    k = get_settings().privacy.min_segment_size
    return sorted(waves.shown_of(session, order, counts, k).hidden())


def _as_pending(cell: Cell) -> Cell:
    """A cell of a hidden wave, as if nothing had been sent to it yet."""
    return cell._replace(
        status=R.pending.value,
        error=None,
        submitted_bin=None,
        final_bin=None,
        parts=0,
        first_ms=None,
        last_ms=None,
        last_final_ms=None,
    )


def _latest(cells: list[Cell]) -> int | None:
    times = [t for c in cells for t in (c.last_ms, c.last_final_ms) if t is not None]
    return max(times, default=None)


def _rows(mine: list[Cell]) -> list[SummaryRow]:
    """The cells as the report's rows (no department or sex: the breakdowns come apart)."""
    return [
        SummaryRow(
            c.calendar,
            "",
            "",
            c.status,
            c.error,
            False,  # no receipt after the cutoff: see `aggregate`
            c.n,
            c.parts,
            _at(c.first_ms),
            _at(c.last_ms),
            _at(c.last_final_ms) if c.submitted_bin is not None else None,
        )
        for c in mine
    ]


def _histogram(mine: list[Cell], first: datetime | None, end: datetime | None) -> Histogram | None:
    """Submissions and receipts per bucket: each bucket is `per` whole bins of the tallies."""
    if first is None or end is None:
        return None
    start, width, n = bucketing(first, end)
    per, origin = width * 1000 // TALLY_BIN_MS, int(start.timestamp()) // width
    sub, rec = [0] * n, [0] * n
    for c in mine:
        if c.status not in HANDED_OVER:
            continue
        handed = c.submitted_bin if c.submitted_bin is not None else c.final_bin
        if handed is not None:
            sub[max(handed // per - origin, 0)] += c.n
        if c.final_bin is not None:
            rec[max(c.final_bin // per - origin, 0)] += c.n
    return Histogram(start, width, sub, rec)


def _controls(cells: list[Cell]) -> Controls:
    outcomes: dict[tuple[str, str | None], int] = {}
    for c in cells:
        outcomes[(c.status, c.error)] = outcomes.get((c.status, c.error), 0) + c.n
    firsts = [c.first_ms for c in cells if c.first_ms is not None]
    finals = [c.last_final_ms for c in cells if c.last_final_ms is not None]
    return Controls(
        rows=[OutcomeRow(st, e, False, n) for (st, e), n in outcomes.items()],
        first_submission=_at(min(firsts, default=None)),
        last_receipt=_at(max(finals, default=None)),
    )


def _opt_outs(
    session: Session, order: Order, hidden: list[str], start: datetime | None, end: datetime
) -> dict[str, int]:
    """As reports/aggregate.opt_outs, without its pass over the window's contact history: the
    window's STOP HMACs are searched by their first 8 bytes in the order's sorted index, and
    the few recipients found are checked in the ledger (full HMAC, contacted, not hidden)."""
    repo = ReportRepository(session)
    index = repo.hmac_index(order.id)
    if index is None or start is None:
        return opt_outs(session, order, hidden, start, end)
    stops = repo.opt_outs(start, end)
    if stops.is_empty():
        return {}
    prefixes, prospect_ids = index
    wanted = np.unique(hmac_prefixes(stops.get_column("phone_hmac").to_list()))
    lo = np.searchsorted(prefixes, wanted, side="left")
    hi = np.searchsorted(prefixes, wanted, side="right")
    runs = [prospect_ids[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
    found = np.concatenate(runs).tolist() if runs else []
    contacted = repo.contacted_of(order.id, found, hidden) if found else []
    sent = pl.DataFrame({"phone_hmac": contacted}, schema={"phone_hmac": pl.Binary})
    kinds = sent.join(stops, on="phone_hmac").group_by("reason").len()
    return {str(r): int(n) for r, n in kinds.iter_rows()}


def aggregate(session: Session, order: Order, now: datetime) -> Aggregates | None:
    """The exact figures of the report of an order from its tallies, as at `now` (or at its
    cutoff once final); None when the tallies cannot tell (see the module's docstring)."""
    repo = ReportRepository(session)
    if not repo.tallied(order.id):
        return None
    cells = repo.cells(order.id)
    mine = [c for c in cells if not c.control]
    controls = [c for c in cells if c.control]
    hidden = _hidden(session, order, mine) if order.status not in SENT_STATES else []
    mine = [_as_pending(c) if c.calendar in hidden else c for c in mine]
    first = _at(min((c.first_ms for c in mine if c.first_ms is not None), default=None))
    last = _at(max((c.last_ms for c in mine if c.last_ms is not None), default=None))
    final_at = _final_at(session, order, last)
    final = final_at is not None and now >= final_at
    until = final_at if final and final_at else now
    latest = _latest(mine + controls)
    if latest is not None and latest > _ms(until):
        return None  # an event after the report's instant: the bins cannot place it
    rows = _rows(mine)
    end = last_event(last, rows)
    reference_day = send_day(first, order)
    return Aggregates(
        final_at=final_at,
        final=final,
        until=until,
        first=first,
        last=last,
        rows=rows,
        opt_outs=_opt_outs(session, order, hidden, first, until),
        histogram=_histogram(mine, first, end),
        breakdowns=breakdowns(
            repo.people(order.id),
            ages(repo, order.id, lambda: repo.prospect_ids(order.id).to_numpy(), reference_day),
        ),
        possible=possible(Criteria.model_validate(quote_of(session, order).criteria)),
        controls=_controls(controls),
        billed=billed(session, order),
    )
