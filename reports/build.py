"""The send report of an order, in three steps with one job each:

- aggregate: the order's tallies (reports/tallies.py), or when they cannot tell its ledger read
  once, with the opt-outs, the base's birth dates and the
  invoices, into exact counts, series and breakdowns (reports/aggregate.py);
- protect: what a customer may see of those counts, small cells hidden with complementary
  suppression (reports/protect.py);
- assemble: the report document, its timeline, cost and prose (reports/assemble.py).

Only counts leave the first step: no phone number, prospect id or reply text reaches the
report.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from kit.settings import get_settings
from reports import exclusions, schemas, tallies
from reports.aggregate import SummaryRow, aggregate, final_at
from reports.assemble import calendar_label, report
from reports.assemble import timeline as _timeline
from reports.protect import protect
from sales.orders.models import Order

# Named here for the callers of the report (service, CLI, benches, tests).
__all__ = ["SummaryRow", "_timeline", "build", "calendar_label", "final_at"]


def build(
    session: Session, order: Order, now: datetime, from_ledger: bool = False
) -> schemas.Report:
    """The report of an order whose sending has started (the caller checks that): from its
    tallies when they can tell, else (or with `from_ledger`) from its ledger."""
    k = get_settings().privacy.min_segment_size
    data = None if from_ledger else tallies.aggregate(session, order, now)
    if data is None:
        data = aggregate(session, order, now)
    document = report(session, order, now, data, protect(data, k), k)
    excluded = exclusions.excluded(session, order, now, k)
    return document.model_copy(update={"excluded_by_files": excluded}) if excluded else document
