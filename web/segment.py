"""The segment builder: a form of criteria, a map of departments, and a count that follows the
clicks.

The count is a quote made by the same flow as `POST /v1/quotes` (sales/quotes/flows.py): the
organisation's daily budget, the privacy of shown counts, the price and the audit all apply.
Each count is one quote; it carries the breakdowns the page draws (departments on the map, age
bands, sexes and regions as bars: web/segment_views.py), so a click costs one quote, not four.
The page works without script (the form posts and the page comes back with the count); with
web/static/segment.js the parts that follow the form are fetched again after each change.

The builder itself (GET) is sent without a count: counting the whole base with its four
breakdowns would hold the page's first paint for the length of a count. Its count panel says
the count is coming; segment.js asks it at once (the same quote the page used to make, one of
the day's budget), and without script the "Compter" button posts the form for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from kit.db import unit_of_work
from kit.errors import RentalError
from kit.settings import get_settings
from sales.exclusions import service
from sales.exclusions.schemas import ExclusionFileOut
from sales.quotes import flows
from sales.quotes.schemas import QuoteOut
from sales.quotes.service import parse_breakdowns
from segmentation import runtime
from segmentation.criteria import MAX_AGE, MIN_AGE
from web import segment_views
from web.client.paths import EXCLUSIONS
from web.i18n import N_, Words
from web.i18n import gettext as _
from web.security import CSRF_FIELD
from web.segment_form import EXCLUDE_BOXES, Segment, choices, read_segment, search
from web.session import HOME, FormDep, WebUserDep, check_csrf
from web.templating import number, render

router = APIRouter(include_in_schema=False)
COUNT = HOME + "/count"
COMMUNES = HOME + "/communes"


# The refusals a quote can meet, in the reader's language; other errors show their own detail.
REFUSALS = Words(
    {
        "quote_budget_exhausted": N_(
            "Le nombre de comptages du jour de votre organisation est atteint ; il se renouvelle "
            "à minuit. Votre chargé de compte peut l'augmenter."
        ),
        "busy": N_(
            "Le service est très sollicité : le comptage n'a pas été fait. Réessayez dans un "
            "instant."
        ),
        "not_configured": N_("La base de prospects n'est pas encore prête : réessayez plus tard."),
        "exclusion_file_not_ready": N_(
            "Un fichier repoussoir coché est en cours de rapprochement avec la base : le "
            "comptage sera possible dans quelques minutes (ou décochez-le)."
        ),
        "exclusion_file_not_found": N_(
            "Un fichier repoussoir coché n'existe plus : décochez-le ou déposez-le à nouveau."
        ),
    }
)


@dataclass
class CountView:
    """The count panel: a number, or why there is none."""

    state: str  # shown, below_minimum, invalid, refused, pending (not counted yet)
    headline: str
    why: str = ""
    price: dict[str, int] | None = None
    quote_id: str = ""  # the quote an order of this count is placed from (web/order.py)


def count_view(seg: Segment, quote: QuoteOut | None, refusal: RentalError | None) -> CountView:
    if seg.errors:
        return CountView("invalid", "—", _("Corrigez les critères signalés pour voir le comptage."))
    if refusal is not None:
        return CountView("refused", "—", REFUSALS.get(refusal.code, refusal.detail))
    assert quote is not None
    if quote.shown_count is None:
        k = quote.minimum_segment_size
        return CountView(
            "below_minimum",
            _("moins de %(minimum)s") % {"minimum": number(k)},
            _(
                "Ce ciblage réunit moins de %(minimum)s personnes : pour protéger leur vie "
                "privée, le chiffre n'est pas affiché et le segment ne peut pas être commandé. "
                "Élargissez vos critères (plus de départements, une tranche d'âge plus large)."
            )
            % {"minimum": number(k)},
        )
    price = None
    if quote.price is not None:
        price = {
            "excl": quote.price.total_excl_vat_cents,
            "incl": quote.price.total_incl_vat_cents,
        }
    return CountView(
        "shown",
        number(quote.shown_count),
        _(
            "Chiffre arrondi et légèrement ajusté pour protéger les personnes : le même ciblage "
            "donne toujours le même chiffre."
        ),
        price,
        quote.id,
    )


@dataclass
class Outcome:
    """A counted form: the count panel, the map and the charts of one quote."""

    count: CountView
    map: segment_views.MapView
    charts: list[segment_views.Chart]


def _count(who: WebUserDep, seg: Segment) -> Outcome:
    """The quote of the form's segment, through the API's own flow: one quote of the day's
    budget, the same privacy, the same audit."""
    quote, refusal = None, None
    if seg.criteria is not None:
        try:
            quote = flows.quote(
                who.principal,
                seg.criteria,
                runtime.current(),
                parse_breakdowns(segment_views.BREAKDOWNS),
            )
        except RentalError as exc:
            refusal = exc
    selected = seg.ticked.get("departments", set())
    return Outcome(
        count_view(seg, quote, refusal),
        segment_views.map_view(quote, seg.criteria, selected),
        segment_views.charts(quote, seg.criteria),
    )


# The builder as first sent: the count is asked by the page's script, which says so in the
# panel's status line; without script, _count.html says to press "Compter".
PENDING = CountView("pending", "…")


def _pending() -> Outcome:
    return Outcome(PENDING, segment_views.map_view(None, None, set(), pending=True), [])


def _context(who: WebUserDep, seg: Segment, counted: bool = True) -> dict[str, Any]:
    outcome = _count(who, seg) if counted else _pending()
    return {
        "segment": seg,
        "count": outcome.count,
        "map": outcome.map,
        "charts": outcome.charts,
    }


def _files(who: WebUserDep) -> list[ExclusionFileOut]:
    """The organisation's exclusion files, to tick (a client's own; the broker's staff build
    segments for no organisation in particular: none)."""
    if who.principal.is_staff:
        return []
    with unit_of_work() as session:
        return service.list_files(session, who.principal)


def _page(request: Request, who: WebUserDep, seg: Segment, counted: bool = True) -> Response:
    context = {
        "user": who,
        "csrf": who.csrf_token,
        "csrf_field": CSRF_FIELD,
        "choices": choices(),
        "exclude_boxes": EXCLUDE_BOXES,
        "exclusion_files": _files(who),
        "exclusions_page": EXCLUSIONS,
        "min_age": MIN_AGE,
        "max_age": MAX_AGE,
        "max_km": get_settings().privacy.max_radius_km,
        **_context(who, seg, counted),
    }
    return render(request, "segment.html", context, 422 if seg.errors else 200)


@router.get(HOME)
def builder(request: Request, who: WebUserDep) -> Response:
    """The builder, no criterion yet: sent at once, its count asked by the page's script."""
    return _page(request, who, read_segment({}), counted=False)


@router.post(HOME)
def builder_posted(request: Request, who: WebUserDep, fields: FormDep) -> Response:
    """The form sent without script: the whole page again, with its count."""
    check_csrf(who, fields)
    return _page(request, who, read_segment(fields))


@router.post(COUNT)
def live_count(request: Request, who: WebUserDep, fields: FormDep) -> Response:
    """The parts that follow the form, for the page's script: the count panel, the map's
    cells, the charts and the fields' errors."""
    check_csrf(who, fields)
    seg = read_segment(fields)
    return render(request, "_live.html", _context(who, seg), 422 if seg.errors else 200)


@router.get(COMMUNES)
def communes(
    request: Request,
    _: WebUserDep,
    q: Annotated[str, Query(max_length=60)] = "",
    mode: Annotated[str, Query(pattern="^(add|radius)$")] = "add",
) -> Response:
    """Search as you type: the communes matching `q` (name, INSEE code or postcode), at most
    ten, as a list of buttons. Reference data only: no quote is spent."""
    found = search(q)
    return render(request, "_communes.html", {"q": q.strip(), "found": found, "mode": mode})
