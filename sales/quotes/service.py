"""Quotes: count a segment, protect what is shown, price it, record and audit it."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from functools import lru_cache

from sqlalchemy.orm import Session

from datasets import reference
from datasets.geography import zone_of_department
from kit import clock
from kit.errors import InvalidInput
from kit.settings import get_settings
from sales.accounts.repository import AuditRepository
from sales.accounts.schemas import Principal
from sales.pricing.service import grid_for, price
from sales.quotes.exceptions import QuoteBudgetExhausted, QuoteNotFound
from sales.quotes.models import CanonicalCriteria, Quote
from sales.quotes.repository import QuoteBudgetRepository, QuoteRepository
from sales.quotes.schemas import BreakdownCell, QuoteOut, QuoteStaffOut
from segmentation import privacy, reach
from segmentation.criteria import Criteria
from segmentation.engine import DEFAULT_BREAKDOWNS, DIMENSIONS, CountResult
from segmentation.runtime import Segmenter


@lru_cache(maxsize=1)
def dimension_values() -> dict[str, list[tuple[str, str]]]:
    """Every possible cell of each breakdown, data-independent (an empty cell is not a tell)."""
    deps = reference.departments().sort("code")
    regions = dict(zip(reference.regions()["code"], reference.regions()["name"], strict=True))
    used_regions = sorted(set(deps["region_code"].to_list()))
    return {
        "region": [(r, regions.get(r, r)) for r in used_regions],
        "department": list(zip(deps["code"], deps["name"], strict=True)),
        "age_band": [(b, b) for b, _, _ in reference.AGE_BANDS],
        "sex": [("F", "Femme / Woman"), ("M", "Homme / Man")],
        "csp": list(zip(reference.pcs()["code"], reference.pcs()["label_fr"], strict=True)),
    }


@lru_cache(maxsize=1)
def parse_breakdowns(text: str | None) -> tuple[str, ...]:
    """'region,sex' or 'all' (default: region and department)."""
    if not text:
        return DEFAULT_BREAKDOWNS
    if text.strip() == "all":
        return DIMENSIONS
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} unknown breakdown(s); allowed: {', '.join(DIMENSIONS)} or 'all'"
        )
    return names


def _start_of_day_paris(now: datetime) -> datetime:
    local = now.astimezone(clock.PARIS)
    return datetime.combine(local.date(), time(0), tzinfo=clock.PARIS)


def _exhausted(budget: int, day: datetime, now: datetime) -> QuoteBudgetExhausted:
    reset = day + timedelta(days=1)
    return QuoteBudgetExhausted(
        f"daily quote budget of {budget} quotes reached for your organisation; it resets at "
        f"{clock.human(reset)} (midnight). Ask your account manager if you "
        "need more.",
        retry_after_seconds=int((reset - now).total_seconds()) + 1,
    )


def check_budget(session: Session, who: Principal, now: datetime) -> None:
    """QuoteBudgetExhausted when the organisation's daily budget is already spent: read only,
    so that a refused quote is not counted. The quote takes its share when it is recorded."""
    if who.is_staff:
        return
    budget = get_settings().privacy.daily_quote_budget
    day = _start_of_day_paris(now)
    if QuoteBudgetRepository(session).used(who.organisation_id, day.date()) >= budget:
        raise _exhausted(budget, day, now)


def take_budget(session: Session, who: Principal, now: datetime) -> None:
    """One quote of the organisation's daily budget (staff have none: they see exact counts
    anyway); QuoteBudgetExhausted, with the time it resets, once it is spent."""
    if who.is_staff:
        return
    budget = get_settings().privacy.daily_quote_budget
    day = _start_of_day_paris(now)
    if QuoteBudgetRepository(session).take(who.organisation_id, day.date(), budget) is None:
        raise _exhausted(budget, day, now)


def counted_dimensions(breakdowns: tuple[str, ...]) -> tuple[str, ...]:
    """Departments are always counted: the price depends on the zone mix (metropolitan or
    overseas). Regions come free from departments: their shown values steer the nested
    suppression."""
    return tuple(set(breakdowns) | {"department", "region"})


def create_quote(
    session: Session,
    who: Principal,
    criteria: Criteria,
    seg: Segmenter,
    breakdowns: tuple[str, ...] = DEFAULT_BREAKDOWNS,
) -> Quote:
    """Check the budget, count and record in the caller's transaction (the CLI, tools). The
    API runs the same steps in two short transactions (sales/quotes/flows.py)."""
    now = clock.now()
    check_budget(session, who, now)
    result = seg.count(session, criteria, now, counted_dimensions(breakdowns))
    return record_quote(session, who, criteria, seg.version, result, breakdowns, now)


def _shown(
    protected: privacy.Protected, breakdowns: tuple[str, ...]
) -> dict[str, list[BreakdownCell]]:
    """The breakdowns asked for, as protected (suppressed cells carry no count)."""
    return {
        dim: [
            BreakdownCell(value=c.value, label=c.label, count=c.count, suppressed=c.suppressed)
            for c in cells
        ]
        for dim, cells in protected.breakdowns.items()
        if dim in breakdowns
    }


def _zone_mix(departments: list[privacy.ShownCell]) -> dict[str, int]:
    """The count per destination zone, for pricing, from the protected department counts
    only: a transport line must not reveal a zone (an overseas department, say) with fewer
    than k prospects."""
    zones: dict[str, int] = {}
    for c in departments:
        zone = zone_of_department()[c.value]
        zones[zone] = zones.get(zone, 0) + (c.count or 0)
    return zones


def record_quote(
    session: Session,
    who: Principal,
    criteria: Criteria,
    snapshot_version: str,
    result: CountResult,
    breakdowns: tuple[str, ...],
    now: datetime,
) -> Quote:
    """Protect a count (minimum size, weights, suppression), price it, take it from the daily
    budget, store and audit it: in one transaction, so that a quote refused by the budget
    leaves nothing and a quote that fails to be stored spends none of it."""
    s = get_settings()
    protected = privacy.protect_result(
        result.total,
        result.total_sampled,
        result.breakdowns,
        result.sampled,
        dimension_values(),
        reach.region_of(),
        s.privacy.min_segment_size,
        result.rate,
        reach.cells(criteria),  # an empty cell they reach is protected as a small one
    )
    shown = protected.total
    zones = _zone_mix(protected.breakdowns["department"])
    quote_price = (
        price(grid_for(session, who.organisation_id), shown, zones) if shown is not None else None
    )
    canonical = CanonicalCriteria.document(criteria)
    # Taken last, just before the writes: the budget's row stays locked until the commit.
    take_budget(session, who, now)
    quote = QuoteRepository(session).add(
        Quote(
            id=str(uuid.uuid4()),
            organisation_id=who.organisation_id,
            user_id=who.user_id,
            snapshot_version=snapshot_version,
            criteria=canonical,
            exact_count=result.total,
            shown_count=shown,
            breakdowns=_shown(protected, breakdowns),
            zone_mix=zones,
            price=quote_price,
            created_at=now,
            expires_at=now + timedelta(days=s.terms.quote_ttl_days),
        )
    )
    AuditRepository(session).record(
        now,
        who.user_id,
        who.organisation_id,
        "quote.create",
        quote.id,
        {
            "criteria": canonical,
            "snapshot": snapshot_version,
            "exact_count": result.total,
            "shown_count": shown,
        },
    )
    return quote


def get_quote(session: Session, who: Principal, quote_id: str) -> Quote:
    """A quote of the caller's organisation (any organisation for staff); 404 otherwise, so that
    a quote's existence is not revealed to another organisation."""
    quote = QuoteRepository(session).get(quote_id, who.scope())
    if quote is None:
        raise QuoteNotFound("no such quote in your organisation")
    AuditRepository(session).record(
        clock.now(), who.user_id, who.organisation_id, "quote.read", quote.id, {}
    )
    return quote


def list_quotes(session: Session, who: Principal, limit: int = 50, offset: int = 0) -> list[Quote]:
    """The caller's organisation's quotes, newest first (any organisation's for staff)."""
    return QuoteRepository(session).recent(who.scope(), limit, offset)


def view(quote: Quote, who: Principal) -> QuoteOut:
    now = clock.now()
    s = get_settings()
    fields = dict(
        id=quote.id,
        criteria=quote.criteria,
        snapshot=quote.snapshot_version,
        shown_count=quote.shown_count,
        below_minimum=quote.shown_count is None,
        minimum_segment_size=s.privacy.min_segment_size,
        orderable=quote.shown_count is not None and quote.expires_at > now,
        breakdowns=quote.breakdowns,
        price=quote.price,
        created_at=quote.created_at,
        expires_at=quote.expires_at,
        expired=quote.expires_at <= now,
    )
    if who.is_staff:
        return QuoteStaffOut(**fields, exact_count=quote.exact_count)
    return QuoteOut(**fields)
