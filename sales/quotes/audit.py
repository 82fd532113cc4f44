"""The broker's audit of quotes: pairs of quotes whose segments differ by fewer than k people.

A customer who asks for A and for A minus a small group T (with `exclude`, complementary value
lists, an age range stopping short of T...) learns, from the two shown counts, the sum of T's
sticky weights (segmentation/privacy.py): never |T| itself, and the same value however often
it asks. The audit is defence in depth and tells the broker who is probing, and with whom.

Each quote shown to a client is compared, off the request path (sales/quotes/tasks.py), with
the quotes shown to clients in the 30 days before it, of any organisation and any snapshot,
whose exact count lies within k of its own (|A xor B| >= ||A| - |B||: the others cannot be
near); the NEAREST closest in size are counted. A pair with 0 < |A xor B| < k is flagged.
A difference of 0 (the same set reworded) is not: both show the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.orm import Session

from kit.settings import get_settings
from sales.accounts import service as accounts
from sales.accounts.models import Role
from sales.quotes.models import Quote, QuoteFlag
from sales.quotes.repository import QuoteAuditRepository
from sales.quotes.schemas import FlaggedQuote, NearQuote, OrganisationFlags, QuoteAuditList
from segmentation.criteria import Criteria

WINDOW = timedelta(days=30)
# Quotes compared with each new one (one scan of the base counts them all): the closest in
# size, since a pair isolating a small group has counts within k of each other.
NEAREST = 20


@dataclass(frozen=True)
class Subject:
    """A quote to audit, as criteria, with the earlier quotes to compare it with."""

    quote: Quote
    criteria: Criteria
    neighbours: list[tuple[Quote, Criteria]]


def _criteria(document: dict[str, object]) -> Criteria | None:
    """A stored quote's criteria; None when today's catalogue no longer accepts them (such a
    quote cannot be counted again, so it is compared with nothing)."""
    try:
        return Criteria.model_validate(document)
    except ValidationError:
        return None


def pending(session: Session, now: datetime, limit: int) -> list[str]:
    """Quotes of the last 30 days not audited yet, oldest first."""
    return QuoteAuditRepository(session).pending(now - WINDOW, limit)


def subject(session: Session, quote_id: str) -> Subject | None:
    """What to compare a quote with; None when there is nothing to do: it is audited already,
    or no client was shown a count (below the minimum, or asked by staff, who see exact counts
    anyway: neither half of a pair that tells a customer anything)."""
    repo = QuoteAuditRepository(session)
    found = repo.with_role(quote_id)
    if found is None:
        return None
    quote, role = found
    if quote.audited_at is not None or role != Role.client or quote.shown_count is None:
        return None
    criteria = _criteria(quote.criteria)
    if criteria is None:
        return None
    k = get_settings().privacy.min_segment_size
    neighbours = []
    for other in repo.neighbours(quote, quote.created_at - WINDOW, k, NEAREST):
        parsed = _criteria(other.criteria)
        if parsed is not None:
            neighbours.append((other, parsed))
    return Subject(quote, criteria, neighbours)


def flags(subject: Subject, differences: list[int], now: datetime) -> list[QuoteFlag]:
    """A flag for each earlier quote at 0 < |A xor B| < k (`differences` in the order of the
    subject's neighbours)."""
    k = get_settings().privacy.min_segment_size
    return [
        QuoteFlag(
            quote_id=subject.quote.id,
            earlier_quote_id=other.id,
            organisation_id=subject.quote.organisation_id,
            earlier_organisation_id=other.organisation_id,
            difference=difference,
            created_at=now,
        )
        for (other, _), difference in zip(subject.neighbours, differences, strict=True)
        if 0 < difference < k
    ]


def record(session: Session, quote_id: str, found: list[QuoteFlag], now: datetime) -> bool:
    """Mark the quote audited and store its flags; False (nothing stored) when another run
    audited it first."""
    repo = QuoteAuditRepository(session)
    if not repo.mark_audited(quote_id, now):
        return False
    repo.add_flags(found)
    return True


def _near(flag: QuoteFlag, earlier: Quote, names: dict[int, str]) -> NearQuote:
    return NearQuote(
        quote_id=earlier.id,
        organisation_id=earlier.organisation_id,
        organisation=names.get(earlier.organisation_id, ""),
        another_organisation=earlier.organisation_id != flag.organisation_id,
        criteria=earlier.criteria,
        created_at=earlier.created_at,
        difference=flag.difference,
        flagged_at=flag.created_at,
    )


def flagged(
    session: Session,
    organisation_id: int | None,
    since: datetime | None,
    limit: int,
    offset: int,
    now: datetime,
) -> QuoteAuditList:
    """Flagged quotes (of one organisation, or all), newest first, each with the earlier quotes
    it is near; and per organisation, its flags of the last 30 days. For account managers."""
    repo = QuoteAuditRepository(session)
    names = {o.id: o.name for o in accounts.organisations(session)}
    quotes = repo.flagged_quotes(organisation_id, since, limit, offset)
    near: dict[str, list[NearQuote]] = {q.id: [] for q in quotes}
    for flag, earlier in repo.flags_of(list(near)):
        near[flag.quote_id].append(_near(flag, earlier, names))
    items = [
        FlaggedQuote(
            quote_id=q.id,
            organisation_id=q.organisation_id,
            organisation=names.get(q.organisation_id, ""),
            criteria=q.criteria,
            snapshot=q.snapshot_version,
            created_at=q.created_at,
            near=near[q.id],
        )
        for q in quotes
    ]
    summary = [
        OrganisationFlags(
            organisation_id=s.organisation_id,
            organisation=names.get(s.organisation_id, ""),
            flags=s.flags,
            with_other_organisations=s.with_other_organisations,
            last_flagged_quote_at=s.last_at,
        )
        for s in repo.summary(organisation_id, now - WINDOW)
    ]
    return QuoteAuditList(
        items=items,
        limit=limit,
        offset=offset,
        window_days=WINDOW.days,
        organisations=summary,
    )
