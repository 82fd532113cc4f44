"""What the segment builder draws from a quote: the map of departments and the small bar charts
of its breakdowns. Only the quote's shown cells are used (the API's own protected breakdowns):
a hidden cell carries no number here either.

A hidden cell that the criteria cannot reach (`segmentation.reach`, from the criteria alone) is
drawn "hors ciblage": whoever wrote the criteria knows it is empty. A hidden cell they reach
is hatched: under the minimum, or hidden with it so that it cannot be deduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sales.quotes.schemas import BreakdownCell, QuoteOut
from segmentation import reach
from segmentation.criteria import Criteria
from web import shapes
from web.i18n import N_, Words, ngettext
from web.i18n import gettext as _
from web.templating import number

CLASSES = 5  # colour steps of the map, lightest to darkest
# French here (the msgids), in the reader's language where they are shown.
HIDDEN = N_("masqué")
HIDDEN_WHY = N_(
    "moins de 100 personnes, ou chiffre masqué avec une petite case pour qu'on ne puisse pas "
    "la déduire des autres"
)
OUTSIDE = N_("hors ciblage")
HIDDEN_WIDTH = 8.0  # a hidden cell's bar: a short hatched stub, whatever it holds
# The charts beside the count, in the quote's words, with labels for its cells in the reader's
# language (region names are proper nouns: as the quote has them).
CHARTS = (
    ("age_band", N_("Âge")),
    ("sex", N_("Sexe")),
    ("region", N_("Régions")),
)
SEX = Words({"F": N_("Femmes"), "M": N_("Hommes")})
BREAKDOWNS = "region,department,age_band,sex"  # asked of every quote of the builder


def _cell_label(dim: str, cell: BreakdownCell) -> str:
    if dim == "sex":
        return SEX.get(cell.value, cell.label)
    if dim == "age_band":
        if cell.value.endswith("+"):
            return _("%(age)s ans et plus") % {"age": cell.value.removesuffix("+")}
        return _("%(band)s ans") % {"band": cell.value}
    return cell.label


@dataclass(frozen=True)
class Step:
    """One colour of the map's legend: the shown counts from `low` to `high`."""

    css: str
    low: int
    high: int

    @property
    def label(self) -> str:
        return _("%(low)s à %(high)s") % {"low": number(self.low), "high": number(self.high)}


def _round(value: float) -> int:
    """Two significant digits: legend bounds people can read."""
    if value <= 0:
        return 0
    digits = 10 ** max(0, int(math.log10(value)) - 1)
    return int(round(value / digits) * digits)


def steps(counts: list[int]) -> list[Step]:
    """Up to CLASSES steps on a log scale between the smallest and largest shown counts
    (department sizes span two orders of magnitude)."""
    if not counts:
        return []
    low, high = min(counts), max(counts)
    if low == high:
        return [Step(f"c{CLASSES}", low, high)]
    edges = [low] + [
        _round(math.exp(math.log(low) + (math.log(high) - math.log(low)) * i / CLASSES))
        for i in range(1, CLASSES)
    ]
    edges = sorted(set(edges)) + [high]
    first = CLASSES - (len(edges) - 1) + 1
    return [Step(f"c{first + i}", edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def _step_of(count: int, legend: list[Step]) -> str:
    for step in legend:
        if count <= step.high:
            return step.css
    return legend[-1].css


@dataclass(frozen=True)
class Department:
    """One department of the map: its state, colour, accessible name, ticked or not."""

    shape: shapes.Shape
    state: str  # shown, hidden, outside, unknown
    css: str
    label: str
    count: int | None
    selected: bool


@dataclass(frozen=True)
class MapView:
    departments: list[Department]
    legend: list[Step]
    has_hidden: bool
    has_outside: bool
    unavailable: str = ""
    pending: bool = False  # the page as first sent: its count is on its way
    zoom: shapes.Zoom | None = None
    zoomed: tuple[str, ...] = shapes.ZOOMED
    width: float = shapes.WIDTH
    height: float = shapes.HEIGHT

    @property
    def credit(self) -> str:
        return _(shapes.CREDIT)


def _department(
    shape: shapes.Shape,
    cell: BreakdownCell | None,
    reached: set[str] | None,
    legend: list[Step],
    selected: set[str],
) -> Department:
    name = f"{shape.name} ({shape.code})"
    if cell is None or reached is None:
        state, css, words = "unknown", "unknown", _("pas de comptage")
    elif cell.count is not None:
        people = ngettext("%(count)s personne", "%(count)s personnes", cell.count)
        state, css, words = (
            "shown",
            _step_of(cell.count, legend),
            people % {"count": number(cell.count)},
        )
    elif shape.code in reached:
        state, css, words = "hidden", "hidden", f"{_(HIDDEN)} ({_(HIDDEN_WHY)})"
    else:
        state, css, words = "outside", "outside", _(OUTSIDE)
    count = cell.count if cell is not None else None
    label = _("%(name)s : %(words)s") % {"name": name, "words": words}
    return Department(shape, state, css, label, count, shape.code in selected)


def map_view(
    quote: QuoteOut | None, criteria: Criteria | None, selected: set[str], pending: bool = False
) -> MapView:
    """The map of a quote's department cells (no quote: every department uncounted)."""
    try:
        all_shapes = shapes.shapes()
    except shapes.MapUnavailable as exc:
        return MapView([], [], False, False, unavailable=str(exc))
    cells = {c.value: c for c in quote.breakdowns.get("department", [])} if quote else {}
    reached = reach.departments(criteria) if criteria is not None and quote else None
    legend = steps([c.count for c in cells.values() if c.count is not None])
    deps = [_department(s, cells.get(s.code), reached, legend, selected) for s in all_shapes]
    return MapView(
        deps,
        legend,
        any(d.state == "hidden" for d in deps),
        any(d.state == "outside" for d in deps),
        pending=pending,
        zoom=shapes.zoom(),
    )


@dataclass(frozen=True)
class Bar:
    label: str
    state: str  # shown, hidden
    text: str
    width: float  # percent of the chart's largest shown cell


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    bars: list[Bar]
    outside: int  # cells the criteria cannot reach: left out, counted in a note

    @property
    def outside_note(self) -> str:
        if not self.outside:
            return ""
        return _outside_note(self.key, self.outside) % {"count": self.outside}


def _outside_note(key: str, n: int) -> str:
    """'2 tranches d'âge hors ciblage non affichées.' (%(count)s left to fill)."""
    if key == "age_band":
        return ngettext(
            "%(count)s tranche d'âge hors ciblage non affichée.",
            "%(count)s tranches d'âge hors ciblage non affichées.",
            n,
        )
    if key == "sex":
        return ngettext(
            "%(count)s sexe hors ciblage non affiché.",
            "%(count)s sexes hors ciblage non affichés.",
            n,
        )
    return ngettext(
        "%(count)s région hors ciblage non affichée.",
        "%(count)s régions hors ciblage non affichées.",
        n,
    )


def charts(quote: QuoteOut | None, criteria: Criteria | None) -> list[Chart]:
    """Age bands, sexes and regions of a quote as bars; none without a quote."""
    if quote is None or criteria is None:
        return []
    reached = reach.cells(criteria)
    out = []
    for key, title in CHARTS:
        cells = quote.breakdowns.get(key, [])
        top = max((c.count for c in cells if c.count is not None), default=0)
        bars = []
        for c in cells:
            if c.count is not None:
                width = 100.0 * c.count / top if top else 0.0
                bars.append(Bar(_cell_label(key, c), "shown", number(c.count), round(width, 2)))
            elif c.value in reached.get(key, set()):
                bars.append(Bar(_cell_label(key, c), "hidden", _(HIDDEN), HIDDEN_WIDTH))
        out.append(Chart(key, _(title), bars, len(cells) - len(bars)))
    return out
