"""What a customer may see of the report's counts: the suppression of segmentation.privacy.

The outcome counts form a tree (recipients -> submitted -> delivered, failed -> reasons...)
protected at every level; breakdowns, the waves and the time series are flat dimensions.
Counts are exact (they match the invoice), never noisy, and never under the minimum count: a
hidden count is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dispatch.states import FINAL, UNSENT
from dispatch.states import RecipientStatus as R
from reports.aggregate import Aggregates, Histogram, SummaryRow, Tally, reason_key
from segmentation import privacy

Shown = dict[str, int | None]
# Published elsewhere whatever their size: the recipients after re-validation (the sum of the
# waves of the order) and the volume submitted (billed on the invoice). Their parts are
# protected around them.
PUBLIC = ("recipients", "submitted")


@dataclass(frozen=True)
class Outcomes:
    """The outcome tree's counts as shown, by node name ('failed:<reason>' for a reason)."""

    shown: Shown
    reasons: tuple[str, ...]  # the failure reasons' node names

    @property
    def segments_shown(self) -> bool:
        """Segments count the messages the carrier took: with one segment each, they would
        give away how many it refused on the spot unless every failure reason is shown."""
        return all(self.shown[r] is not None for r in self.reasons)


@dataclass(frozen=True)
class Protected:
    outcomes: Outcomes
    opt_outs: Shown  # stop_reply, stop_link, total
    breakdowns: dict[str, Shown]  # per dimension, per value
    series: list[tuple[int | None, int | None]]  # per bucket: submissions, receipts


def outcome_tree(rows: list[SummaryRow]) -> privacy.Node:
    """The recipients split by outcome. The names are the report's outcome keys, not ledger
    statuses: `pending` is every recipient not yet handed over, `submitted` every one handed
    over, `awaiting_receipt` those with no receipt (yet, or before the cutoff)."""
    leaves: dict[str, int] = {}
    reasons: dict[str, int] = {}

    def add(key: str, n: int) -> None:
        leaves[key] = leaves.get(key, 0) + n

    for r in rows:
        if r.status in UNSENT:
            add("pending", r.n)
        elif r.status == R.submitted or (r.late and r.status in FINAL):
            add("awaiting_receipt", r.n)
        elif r.status == R.failed:
            key = "failed:" + reason_key(r.error)
            reasons[key] = reasons.get(key, 0) + r.n
        elif r.status in (R.delivered, R.expired, R.unknown, R.opted_out):
            add(r.status, r.n)
        else:  # a status added to the ledger later: counted, never dropped
            add(R.unknown, r.n)
    failed = privacy.Node(
        "failed",
        sum(reasons.values()),
        tuple(privacy.Node(k, n) for k, n in sorted(reasons.items())),
    )
    submitted_parts = (
        privacy.Node("delivered", leaves.get("delivered", 0)),
        failed,
        privacy.Node("expired", leaves.get("expired", 0)),
        privacy.Node("awaiting_receipt", leaves.get("awaiting_receipt", 0)),
    )
    submitted = privacy.Node("submitted", sum(p.exact for p in submitted_parts), submitted_parts)
    root_parts = (
        submitted,
        privacy.Node("unknown", leaves.get("unknown", 0)),
        privacy.Node("opted_out", leaves.get("opted_out", 0)),
        privacy.Node("pending", leaves.get("pending", 0)),
    )
    return privacy.Node("recipients", sum(p.exact for p in root_parts), root_parts)


def shown_tree(tree: privacy.Node, k: int, public: tuple[str, ...] = ()) -> Shown:
    hidden = privacy.suppress_tree(tree, k, public)
    return {n.name: None if n.name in hidden else n.exact for n in tree.walk()}


def outcomes(rows: list[SummaryRow], k: int) -> Outcomes:
    tree = outcome_tree(rows)
    failed = next(p for p in tree.walk() if p.name == "failed")
    return Outcomes(shown_tree(tree, k, PUBLIC), tuple(p.name for p in failed.parts))


def opt_outs(stops: Mapping[str, int], k: int) -> Shown:
    tree = privacy.Node(
        "total",
        sum(stops.values()),
        (
            privacy.Node("stop_reply", stops.get("stop_reply", 0)),
            privacy.Node("stop_link", stops.get("stop_link", 0)),
        ),
    )
    return shown_tree(tree, k)


def cells(tallies: list[Tally], k: int, hide_all: bool, possible: set[str]) -> Shown:
    """A dimension's cells, each as shown (every cell hidden with `hide_all`). Every value of
    the dimension is listed, so no cell is there because someone is in it; an empty cell the
    criteria reach (`possible`) is protected as a small one, so that the others shown in full
    do not tell that nobody is in it."""
    shown = privacy.suppress_possible({t.value: t.n for t in tallies}, k, possible)
    return {t.value: None if hide_all else shown[t.value] for t in tallies}


def series(
    histogram: Histogram | None, k: int, receipts_shown: bool
) -> list[tuple[int | None, int | None]]:
    """Each line adds up to a count of the report: submissions to `submitted` (public),
    receipts to `submitted` less `awaiting_receipt`. Buckets are suppressed among themselves;
    the receipts line is hidden whole when `awaiting_receipt` is (its total would give it
    away)."""
    if histogram is None:
        return []
    keys = [str(i) for i in range(len(histogram.submitted))]

    def shown(line: list[int]) -> Shown:
        return privacy.suppress_counts(dict(zip(keys, line, strict=True)), k, zeros_shown=True)

    sub = shown(histogram.submitted)
    rec = shown(histogram.receipts) if receipts_shown else dict.fromkeys(keys)
    return [(sub[i], rec[i]) for i in keys]


def protect(data: Aggregates, k: int) -> Protected:
    """The report's counts as a customer may see them."""
    out = outcomes(data.rows, k)
    hide_all = out.shown["recipients"] is None
    return Protected(
        outcomes=out,
        opt_outs=opt_outs(data.opt_outs, k),
        breakdowns={
            d: cells(t, k, hide_all, data.possible.get(d, set()))
            for d, t in data.breakdowns.items()
        },
        series=series(data.histogram, k, receipts_shown=out.shown["awaiting_receipt"] is not None),
    )
