"""How many people of an order's segment its exclusion files leave out: the segment counted
with and without them, the difference shown as any count is (segmentation/privacy.shown_count:
the weights of those people, rounded, nothing under the minimum), never exactly."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sales.orders.models import Order
from sales.quotes.models import Quote
from segmentation import privacy, runtime
from segmentation.criteria import Criteria
from segmentation.exceptions import ExclusionFileNotFound, ExclusionFileNotReady


def excluded(session: Session, order: Order, now: datetime, k: int) -> int | None:
    """The shown count of the people the files leave out now; None without files, when it
    is under the minimum, or when a file was deleted since."""
    quote = session.get(Quote, order.quote_id)
    if quote is None:
        return None
    criteria = Criteria.model_validate(quote.criteria)
    if not criteria.exclusion_files:
        return None
    seg = runtime.current()
    everyone = criteria.model_copy(update={"exclusion_files": None})
    try:
        with seg.lock:
            today = seg.refresh_eligibility(session, now)
            seg.load_exclusions(session, criteria)
            kept = seg.engine.count(criteria, today, ())
            whole = seg.engine.count(everyone, today, ())
    except (ExclusionFileNotFound, ExclusionFileNotReady):
        return None
    return privacy.shown_count(
        whole.total - kept.total, whole.total_sampled - kept.total_sampled, k, kept.rate
    )
