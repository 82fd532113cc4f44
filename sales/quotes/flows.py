"""A quote over HTTP, in three short transactions: a connection is held only while the
database is used, never while a request waits for the engine or counts.

take one quote of the budget (committed at once: concurrent requests see it) -> count (the
engine reads the excluded set in a transaction of its own) -> record and audit the quote. If the
count or the record fails, the budget taken for it is given back: nothing was shown.
"""

from __future__ import annotations

from kit import clock
from kit.db import unit_of_work
from sales.accounts.schemas import Principal
from sales.quotes import service
from sales.quotes.schemas import QuoteOut
from segmentation.criteria import Criteria
from segmentation.runtime import Segmenter


def quote(
    who: Principal, criteria: Criteria, seg: Segmenter, breakdowns: tuple[str, ...]
) -> QuoteOut:
    now = clock.now()
    with unit_of_work() as session:
        service.take_budget(session, who, now)
    try:
        result = seg.count_fresh(criteria, now, service.counted_dimensions(breakdowns))
        with unit_of_work() as session:
            quote = service.record_quote(
                session, who, criteria, seg.version, result, breakdowns, now
            )
            return service.view(quote, who)
    except BaseException:
        with unit_of_work() as session:
            service.give_back_budget(session, who, now)
        raise
