"""The quote audit (`GET /v1/audit/quotes`, sales/quotes/audit.flagged): quotes that, with an
earlier one, isolate fewer people than the minimum segment size, per organisation, their
criteria in words, and another organisation's quote as a hint of collusion."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import Response

from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.accounts import service as accounts
from sales.quotes import audit
from sales.quotes.schemas import FlaggedQuote, NearQuote
from web.staff.access import AUDIT, StaffUserDep, common
from web.staff.words import apart, in_words
from web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = 25


@dataclass
class Pair:
    """A near quote beside the flagged one: what only each of them says."""

    near: NearQuote
    words: list[str]
    only_flagged: list[str]
    only_near: list[str]


@dataclass
class Flagged:
    quote: FlaggedQuote
    words: list[str]
    pairs: list[Pair]


def _flagged(item: FlaggedQuote) -> Flagged:
    pairs = []
    for near in item.near:
        mine, theirs = apart(item.criteria, near.criteria)
        pairs.append(Pair(near, in_words(near.criteria), mine, theirs))
    return Flagged(item, in_words(item.criteria), pairs)


def _whole(text: str, most: int) -> int | None:
    ok = text.isascii() and text.isdigit() and len(text) <= 10
    return int(text) if ok and 1 <= int(text) <= most else None


@router.get(AUDIT)
def quote_audit(request: Request, who: StaffUserDep) -> Response:
    """One page of flagged quotes, newest first, and the flags per organisation (a filter
    that makes no sense shows them all: a page, not a JSON error)."""
    organisation = _whole(request.query_params.get("organisation", ""), 2**31 - 1)
    page = _whole(request.query_params.get("page", ""), 10_000) or 1
    with unit_of_work() as session:
        listing = audit.flagged(
            session, organisation, None, PAGE + 1, (page - 1) * PAGE, clock.now()
        )
        organisations = [(o.id, o.name) for o in accounts.organisations(session)]
    context = common(who, "audit") | {
        "listing": listing,
        "items": [_flagged(i) for i in listing.items[:PAGE]],
        "more": len(listing.items) > PAGE,
        "page": page,
        "organisation": organisation,
        "organisations": organisations,
        "minimum": get_settings().privacy.min_segment_size,
    }
    return render(request, "staff_audit.html", context)
