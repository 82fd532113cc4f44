"""The segment builder: a form of criteria and a count that follows the clicks.

The count is a quote made by the same flow as `POST /v1/quotes` (sales/quotes/flows.py): the
organisation's daily budget, the privacy of shown counts, the price and the audit all apply.
The page works without script (the form posts and the page comes back with the count); with
web/static/segment.js the count panel alone is fetched again after each change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from kit.errors import RentalError
from sales.quotes import flows
from sales.quotes.schemas import QuoteOut
from sales.quotes.service import parse_breakdowns
from segmentation import criteria as catalogue
from segmentation import runtime
from segmentation.criteria import MAX_AGE, MIN_AGE, Criteria
from web.security import CSRF_FIELD, Fields
from web.security import field as one
from web.session import HOME, FormDep, WebUserDep, check_csrf
from web.templating import number, render

router = APIRouter(include_in_schema=False)
COUNT = HOME + "/count"
# Criteria whose values the form lists as boxes to tick, in the catalogue's order. Postcodes,
# communes, the radius and exclusions need a search or a map: not in this form yet.
BOXES = ("sex", "csp", "regions", "departments", "housing", "dwelling", "income", "interests")
CHILDREN = {"": None, "yes": True, "no": False}


@cache
def choices() -> list[dict[str, Any]]:
    """The boxes of the form: each criterion's French label and its values."""
    listed = {c["key"]: c for c in catalogue.catalogue()["criteria"]}
    return [
        {
            "key": key,
            "label": listed[key]["label_fr"],
            "values": [(v["value"], v["label_fr"]) for v in listed[key]["values"]],
        }
        for key in BOXES
    ]


@dataclass
class Segment:
    """What the form says: the criteria, the values to show ticked, and what is wrong."""

    ticked: dict[str, set[str]] = field(default_factory=dict)
    age_min: str = str(MIN_AGE)
    age_max: str = str(MAX_AGE)
    children: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    criteria: Criteria | None = None


def _age(text: str, default: int, name: str, errors: dict[str, str]) -> int:
    text = text.strip()
    if not text:
        return default
    if not text.isdigit() or not MIN_AGE <= int(text) <= MAX_AGE:
        errors[name] = f"Saisissez un âge entier entre {MIN_AGE} et {MAX_AGE} ans."
        return default
    return int(text)


def read_segment(fields: Fields) -> Segment:
    """The criteria of a posted form (an empty form: the whole base)."""
    seg = Segment(
        ticked={key: {v for v in fields.get(key, []) if v} for key in BOXES},
        age_min=one(fields, "age_min").strip()[:3] or str(MIN_AGE),
        age_max=one(fields, "age_max").strip()[:3] or str(MAX_AGE),
        children=one(fields, "children") if one(fields, "children") in CHILDREN else "",
    )
    low = _age(seg.age_min, MIN_AGE, "age_min", seg.errors)
    high = _age(seg.age_max, MAX_AGE, "age_max", seg.errors)
    if not seg.errors and low > high:
        seg.errors["age_max"] = "L'âge maximum est inférieur à l'âge minimum : inversez-les."
    if seg.errors:
        return seg
    doc: dict[str, Any] = {key: sorted(vals) for key, vals in seg.ticked.items() if vals}
    if (low, high) != (MIN_AGE, MAX_AGE):
        doc["age"] = {"min": low, "max": high}
    if CHILDREN[seg.children] is not None:
        doc["children"] = CHILDREN[seg.children]
    try:
        seg.criteria = Criteria.model_validate(doc)
    except ValidationError as exc:  # values the form does not offer: a page out of date
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "form"
        seg.errors[key if key in BOXES else "form"] = (
            "Ce choix n'est pas possible : rechargez la page et recommencez ("
            + str(first["msg"]).removeprefix("Value error, ")
            + ")."
        )
    return seg


# French words for the refusals a quote can meet; other errors show their own detail.
REFUSALS = {
    "quote_budget_exhausted": "Le nombre de comptages du jour de votre organisation est atteint ; "
    "il se renouvelle à minuit. Votre chargé de compte peut l'augmenter.",
    "busy": "Le service est très sollicité : le comptage n'a pas été fait. Réessayez dans un "
    "instant.",
    "not_configured": "La base de prospects n'est pas encore prête : réessayez plus tard.",
}


@dataclass
class CountView:
    """The count panel: a number, or why there is none."""

    state: str  # shown, below_minimum, invalid, refused
    headline: str
    why: str = ""
    price: dict[str, int] | None = None


def count_view(seg: Segment, quote: QuoteOut | None, refusal: RentalError | None) -> CountView:
    if seg.errors:
        return CountView("invalid", "—", "Corrigez les critères signalés pour voir le comptage.")
    if refusal is not None:
        return CountView("refused", "—", REFUSALS.get(refusal.code, refusal.detail))
    assert quote is not None
    if quote.shown_count is None:
        k = quote.minimum_segment_size
        return CountView(
            "below_minimum",
            f"moins de {number(k)}",
            f"Ce ciblage réunit moins de {number(k)} personnes : pour protéger leur vie "
            "privée, le chiffre n'est pas affiché et le segment ne peut pas être commandé. "
            "Élargissez vos critères (plus de départements, une tranche d'âge plus large).",
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
        "Chiffre arrondi et légèrement ajusté pour protéger les personnes : le même ciblage "
        "donne toujours le même chiffre.",
        price,
    )


def _count(who: WebUserDep, seg: Segment) -> CountView:
    """The quote of the form's segment, through the API's own flow."""
    if seg.criteria is None:
        return count_view(seg, None, None)
    try:
        quote = flows.quote(who.principal, seg.criteria, runtime.current(), parse_breakdowns(None))
    except RentalError as exc:
        return count_view(seg, None, exc)
    return count_view(seg, quote, None)


def _page(request: Request, who: WebUserDep, seg: Segment) -> Response:
    context = {
        "user": who,
        "csrf": who.csrf_token,
        "csrf_field": CSRF_FIELD,
        "choices": choices(),
        "segment": seg,
        "count": _count(who, seg),
        "min_age": MIN_AGE,
        "max_age": MAX_AGE,
    }
    return render(request, "segment.html", context, 422 if seg.errors else 200)


@router.get(HOME)
def builder(request: Request, who: WebUserDep) -> Response:
    """The builder with the whole base counted (no criterion yet)."""
    return _page(request, who, read_segment({}))


@router.post(HOME)
def builder_posted(request: Request, who: WebUserDep, fields: FormDep) -> Response:
    """The form sent without script: the whole page again, with its count."""
    check_csrf(who, fields)
    return _page(request, who, read_segment(fields))


@router.post(COUNT)
def live_count(request: Request, who: WebUserDep, fields: FormDep) -> Response:
    """The count panel alone, for the page's script."""
    check_csrf(who, fields)
    seg = read_segment(fields)
    context = {"count": _count(who, seg), "segment": seg}
    return render(request, "_count.html", context, 422 if seg.errors else 200)
