"""A quote over HTTP, in two short transactions: a connection is held only while the
database is used, never while a request waits for the engine or counts. And the audit of
quotes (sales/quotes/audit.py), run by a worker after they were answered.

count (in the engine's turn, one transaction reads the excluded set, after a look at the
budget: an organisation whose daily budget is spent is refused without a count) -> record
(one transaction: take one quote of the budget, store and audit the quote). The budget is taken
by one atomic statement in the transaction that stores the quote, so concurrent quotes never
spend more than the budget, and a quote that fails to be stored spends none of it.
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from kit import clock, metrics, tracing
from kit.db import unit_of_work
from sales.accounts.schemas import Principal
from sales.exclusions import service as exclusions
from sales.quotes import audit, service
from sales.quotes.schemas import QuoteOut
from segmentation import overlap, runtime
from segmentation.criteria import Criteria
from segmentation.runtime import Segmenter


@metrics.counts_quotes  # served, or refused by the error's code
def quote(
    who: Principal, criteria: Criteria, seg: Segmenter, breakdowns: tuple[str, ...]
) -> QuoteOut:
    now = clock.now()

    def budget_left(session: Session) -> None:
        service.check_budget(session, who, now)
        exclusions.check_owned(session, who, criteria)

    dims = service.counted_dimensions(breakdowns)
    result = seg.count_fresh(criteria, now, dims, check=budget_left)
    with unit_of_work() as session:
        quote = service.record_quote(session, who, criteria, seg.version, result, breakdowns, now)
        tracing.remember("quote", quote.id)  # its audit, by the workers' sweep, joins this trace
        return service.view(quote, who)


def audit_quote(quote_id: str) -> int:
    """Compare one quote with its earlier neighbours in size; the number of flags stored.
    Two short transactions around the engine's scan (no connection held while it counts)."""
    with unit_of_work() as session:
        subject = audit.subject(session, quote_id)
    found = []
    if subject is not None and subject.neighbours:
        others = [criteria for _, criteria in subject.neighbours]
        differences = overlap.differences(runtime.current(), subject.criteria, others, clock.now())
        found = audit.flags(subject, differences, clock.now())
    with unit_of_work() as session:
        stored = audit.record(session, quote_id, found, clock.now())
    return len(found) if stored else 0


def audit_pending(seconds: float, batch: int = 50) -> int:
    """Audit the quotes not audited yet, oldest first, for about `seconds`; the number of
    flags stored. What is left waits for the next run."""
    deadline = time.monotonic() + seconds
    stored = 0
    while time.monotonic() < deadline:
        with unit_of_work() as session:
            ids = audit.pending(session, clock.now(), batch)
        if not ids:
            break
        for quote_id in ids:
            with tracing.following("quote", quote_id, "quotes.audit_quote"):
                stored += audit_quote(quote_id)
            if time.monotonic() >= deadline:
                break
    return stored
