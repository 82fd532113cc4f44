"""What the send report counts of an order, exact: the ledger read once and aggregated, the
opt-outs of its recipients, the base's birth dates, and what its invoices bill.

The order's ledger is read once (ReportRepository.ledger, Arrow) and every figure is an
aggregate of that frame in Polars: outcomes, segments, waves, the time series, the breakdowns.
The age bands are those tallied at planning (the recipients' age on the send day); for an order
planned before them, the frame's prospect ids are joined with the base's birth dates. The
opt-outs are the window's STOPs whose number the order contacted (its contact history). Only
counts leave this module. No phone number or reply text is read.

A report is `in_progress` from the start of sending; it becomes `final` when the receipt window
(settings.receipt_window_hours) after the last submission closes. Until the order is sent, the
recipients of a hidden wave (dispatch.waves.ShownWaves) count as pending in every figure: a
small wave is often sent alone (an overseas window opens hours apart from Paris), and two
reports minutes apart would otherwise differ by exactly its size. Once the order is sent
everything is exact: the hidden waves add up to k or more together, or to nothing. A final
report is the state at that instant: receipts or opt-outs that come later are left out, so
building it again gives the same report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
from sqlalchemy.orm import Session

from datasets import reference
from datasets import snapshot as snap
from datasets.geography import PARIS
from dispatch import waves, windows
from dispatch.states import HANDED_OVER
from dispatch.states import RecipientStatus as R
from kit import clock
from kit.settings import get_settings
from reports.repository import ReportRepository
from sales.invoices.models import InvoiceKind
from sales.invoices.repository import InvoiceRepository
from sales.orders.access import quote_of
from sales.orders.models import Order
from sales.orders.repository import OrderRepository
from sales.orders.states import OrderStatus
from sales.quotes.service import dimension_values
from segmentation import reach
from segmentation.criteria import Criteria

S = OrderStatus
SENT_STATES = (S.sent, S.reported, S.closed)
BUCKETS = (300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 48
_SAFE_REASON = re.compile(r"^[A-Za-z_ -]{1,40}$")  # carrier codes; no digits can pass


def reason_key(error: str | None) -> str:
    """A carrier's failure code as a report key: words only, never anything with digits."""
    if not error or not _SAFE_REASON.match(error):
        return "other"
    return error.strip().lower().replace(" ", "_")


@dataclass(frozen=True)
class OutcomeRow:
    status: str
    error: str | None
    late: bool  # its receipt came after the report's cutoff
    n: int


@dataclass(frozen=True)
class SummaryRow:
    """One group of an order's recipients: same calendar, department, sex, status, error and
    lateness."""

    calendar: str
    department: str
    sex: str
    status: str
    error: str | None
    late: bool  # its receipt came after the report's cutoff
    n: int
    parts: int  # SMS segments of those submitted
    first: datetime | None  # first and last submission
    last: datetime | None
    last_receipt: datetime | None  # of a submitted message, up to `until`


@dataclass(frozen=True)
class Span:
    """The recipients of one wave (calendar), with their first and last submission."""

    recipients: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True)
class Histogram:
    """Submissions and receipts per time bucket: bucket i starts at start + i * width."""

    start: datetime
    width_seconds: int
    submitted: list[int]
    receipts: list[int]


@dataclass(frozen=True)
class Tally:
    """One cell of a breakdown: every possible value is listed, empty ones too."""

    value: str
    label: str
    n: int


@dataclass(frozen=True)
class Controls:
    """The control numbers' outcomes (rows with a negative prospect id)."""

    rows: list[OutcomeRow]
    first_submission: datetime | None
    last_receipt: datetime | None


@dataclass(frozen=True)
class Billed:
    """What the order's invoices bill, net of credit notes."""

    excl_vat_cents: int
    vat_cents: int
    incl_vat_cents: int


@dataclass(frozen=True)
class Aggregates:
    """Everything the report counts of an order, exact (protect.py hides what must be)."""

    final_at: datetime | None  # when the report becomes final (None while sending goes on)
    final: bool
    until: datetime  # the report is the state at this instant
    first: datetime | None  # the order's own recipients' first and last submission
    last: datetime | None
    rows: list[SummaryRow]
    opt_outs: dict[str, int]  # per kind
    histogram: Histogram | None  # None before the first submission
    breakdowns: dict[str, list[Tally]]
    possible: dict[str, set[str]]  # per dimension: the cells the criteria reach (see protect)
    controls: Controls
    billed: Billed | None  # None until the balance is settled (the order is sent)


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _late(cutoff: datetime | None) -> pl.Expr:
    """A receipt after the cutoff (a final report is the state at the cutoff)."""
    if cutoff is None:
        return pl.lit(False)
    return (pl.col("final_ms") > _ms(cutoff)).fill_null(False)


def summary(ledger: pl.DataFrame, cutoff: datetime | None, until: datetime) -> list[SummaryRow]:
    """The recipients per calendar, department, sex, status, error and lateness: how many,
    their segments, first and last submission, last receipt (of a submitted message, up to
    `until`)."""
    submitted = pl.col("submitted_ms").is_not_null()
    groups = (
        ledger.with_columns(_late(cutoff).alias("late"))
        .group_by("calendar", "department", "sex", "status", "error", "late")
        .agg(
            pl.len().alias("n"),
            pl.when(submitted).then(pl.col("parts")).otherwise(0).sum().alias("parts"),
            pl.col("submitted_ms").min().alias("first"),
            pl.col("submitted_ms").max().alias("last"),
            pl.when(submitted & (pl.col("final_ms") <= _ms(until)))
            .then(pl.col("final_ms"))
            .max()
            .alias("last_receipt"),
        )
    )
    return [
        SummaryRow(
            str(r["calendar"]),
            str(r["department"]),
            str(r["sex"] or ""),
            str(r["status"]),
            r["error"],
            bool(r["late"]),
            int(r["n"]),
            int(r["parts"]),
            _at(r["first"]),
            _at(r["last"]),
            _at(r["last_receipt"]),
        )
        for r in groups.iter_rows(named=True)
    ]


def _outcomes(ledger: pl.DataFrame, cutoff: datetime | None) -> list[OutcomeRow]:
    groups = (
        ledger.with_columns(_late(cutoff).alias("late")).group_by("status", "error", "late").len()
    )
    return [OutcomeRow(str(st), e, bool(lt), int(n)) for st, e, lt, n in groups.iter_rows()]


def _controls(ledger: pl.DataFrame, cutoff: datetime | None) -> Controls:
    return Controls(
        rows=_outcomes(ledger, cutoff),
        first_submission=_at(ledger["submitted_ms"].min()),  # type: ignore[arg-type]
        last_receipt=_at(ledger["final_ms"].max()),  # type: ignore[arg-type]
    )


def _counts_per_bucket(
    ledger: pl.DataFrame, start: datetime, width_seconds: int, until: datetime
) -> tuple[dict[int, int], dict[int, int]]:
    """Submissions and receipts (of submitted messages, up to `until`) per time bucket from
    `start`. Every message handed to the carrier counts, the ones it refused on the spot
    included (no submission time: their refusal is both): the series add up to `submitted`,
    a published count, and the receipts to `submitted` less `awaiting_receipt`."""
    origin, width, end = _ms(start), width_seconds * 1000, _ms(until)
    handed = pl.coalesce("submitted_ms", "final_ms")
    final = pl.col("final_ms")
    buckets = ledger.filter(pl.col("status").is_in(sorted(s.value for s in HANDED_OVER))).select(
        pl.when(handed <= end).then(((handed - origin) // width).clip(lower_bound=0)).alias("b"),
        pl.when(final <= end).then(((final - origin) // width).clip(lower_bound=0)).alias("f"),
    )
    submitted = buckets.drop_nulls("b").group_by("b").len().iter_rows()
    receipts = buckets.drop_nulls("f").group_by("f").len().iter_rows()
    return {int(b): int(n) for b, n in submitted}, {int(f): int(n) for f, n in receipts}


def bucketing(first: datetime, end: datetime) -> tuple[datetime, int, int]:
    """The series' start, bucket width (seconds) and number of buckets: the whole send, from
    the first submission to `end` (the last event), fits in at most MAX_BUCKETS."""
    span = (end - first).total_seconds() + 1
    width = next((w for w in BUCKETS if span / w <= MAX_BUCKETS), BUCKETS[-1])
    start = datetime.fromtimestamp(int(first.timestamp()) // width * width, UTC)
    return start, width, int((end - start).total_seconds() // width) + 1


def histogram(
    ledger: pl.DataFrame, first: datetime | None, end: datetime | None, until: datetime
) -> Histogram | None:
    """Submissions and receipts per time bucket, the bucket chosen so that the whole send fits
    in at most MAX_BUCKETS of them (from the first submission to `end`, the last event)."""
    if first is None or end is None:
        return None
    start, width, n = bucketing(first, end)
    sub, rec = _counts_per_bucket(ledger, start, width, until)
    return Histogram(
        start, width, [sub.get(i, 0) for i in range(n)], [rec.get(i, 0) for i in range(n)]
    )


def opt_outs(
    session: Session, order: Order, hidden: list[str], start: datetime | None, end: datetime
) -> dict[str, int]:
    """STOP replies and STOP-link visits, per kind, made between `start` (the first
    submission) and `end` by the recipients the order contacted (its contact history: those
    handed the message, or perhaps handed it), outside the `hidden` waves."""
    if start is None:
        return {}
    repo = ReportRepository(session)
    stops = repo.opt_outs(start, end)
    if stops.is_empty():
        return {}
    contacted = repo.contacted_stops(
        order.id, (start, end), (start, _contacts_end(session, order, end)), hidden
    )
    sent = pl.DataFrame({"phone_hmac": contacted}, schema={"phone_hmac": pl.Binary})
    kinds = sent.join(stops, on="phone_hmac").group_by("reason").len()
    return {str(r): int(n) for r, n in kinds.iter_rows()}


def _contacts_end(session: Session, order: Order, end: datetime) -> datetime:
    """No contact of the order is later than when it became sent (give or take the clocks'
    skew between hosts): the contact history's other orders after that are not read."""
    sent = [e.at for e in OrderRepository(session).events(order.id) if e.to_status == S.sent]
    return min(end, sent[-1] + clock.SKEW) if sent else end


def _ages(prospect_ids: np.ndarray, on: date) -> dict[str, int]:
    """Recipients per age band on `on`, from the current base's birth dates (a prospect removed
    by a refresh since is counted under 'unknown')."""
    if len(prospect_ids) == 0:
        return {}
    current = snap.current(get_settings().base_dir)
    base = pl.scan_parquet(current.attributes).select("prospect_id", "birth_date")
    ids = pl.LazyFrame({"prospect_id": prospect_ids})
    out = (
        ids.join(base, on="prospect_id", how="left")
        .select(reference.age_band(pl.col("birth_date"), on).alias("band"))
        .group_by("band")
        .len()
        .collect()
    )
    return {str(b): int(n) for b, n in out.iter_rows()}


def ages(
    repo: ReportRepository, order_id: str, prospect_ids: Callable[[], np.ndarray], on: date
) -> dict[str, int]:
    """The order's recipients per age band: on the send day as tallied at planning, or for an
    order planned before that (migration 0014) on `on` from the current base's birth dates
    of `prospect_ids()`."""
    tallied = repo.ages(order_id)
    return tallied if tallied is not None else _ages(prospect_ids(), on)


def _tallies(counts: dict[str, int], labels: list[tuple[str, str]]) -> list[Tally]:
    """Every possible cell of a dimension (empty ones too: the listing tells nothing)."""
    return [Tally(v, label, counts.get(v, 0)) for v, label in labels]


def breakdowns(
    people: Iterable[tuple[str, str, int]], ages: dict[str, int]
) -> dict[str, list[Tally]]:
    """The recipients per region, age band and sex, from (department, sex, how many) and
    their numbers per age band."""
    dims = dimension_values()
    region_of = reach.region_of()
    regions: dict[str, int] = {}
    sexes: dict[str, int] = {}
    for department, sex, n in people:
        r = region_of.get(department, "unknown")
        regions[r] = regions.get(r, 0) + n
        sexes[sex or "unknown"] = sexes.get(sex or "unknown", 0) + n
    return {
        "region": _tallies(regions, dims["region"]),
        "age_band": _tallies(ages, [*dims["age_band"], ("unknown", "Unknown")]),
        "sex": _tallies(sexes, dims["sex"]),
    }


def possible(criteria: Criteria) -> dict[str, set[str]]:
    """Per breakdown, the cells where the order's criteria may find someone: an empty one of
    them is protected as a small one (privacy.suppress_possible). Ages are taken a year wider
    (the draw and the report's day may straddle a birthday); `unknown` (left the base since)
    is no attribute of anyone a customer can target, and stays as any empty cell."""
    return {
        "region": reach.regions(criteria),
        "age_band": reach.age_bands(criteria, slack_years=1),
        "sex": reach.listed(criteria, "sex"),
    }


def spans(rows: list[SummaryRow]) -> dict[str, Span]:
    """Per calendar: how many recipients, first and last submission."""
    out: dict[str, Span] = {}
    for r in rows:
        was = out.get(r.calendar, Span(0, None, None))
        firsts = [t for t in (was.first, r.first) if t]
        lasts = [t for t in (was.last, r.last) if t]
        out[r.calendar] = Span(
            was.recipients + r.n, min(firsts) if firsts else None, max(lasts) if lasts else None
        )
    return out


def dispatch_started(session: Session, order: Order) -> datetime | None:
    started = [
        e.at for e in OrderRepository(session).events(order.id) if e.action == "dispatch_started"
    ]
    return started[0] if started else None


def _final_at(session: Session, order: Order, last: datetime | None) -> datetime | None:
    """When the report becomes final: the receipt window after the last submission, once the
    order is sent (None while sending goes on)."""
    if order.status not in SENT_STATES:
        return None
    hours = timedelta(hours=get_settings().dispatch.receipt_window_hours)
    if last is not None:
        return last + hours
    sent = [e.at for e in OrderRepository(session).events(order.id) if e.to_status == S.sent]
    return (sent[-1] if sent else order.updated_at) + hours


def final_at(session: Session, order: Order, now: datetime) -> datetime | None:
    """When the order's report becomes final (None while it is still sending)."""
    return _final_at(session, order, ReportRepository(session).last_submission(order.id))


def billed(session: Session, order: Order) -> Billed | None:
    """What the order's invoices bill, net of credit notes: the deposit and the balance for the
    volume handed over, or the deposit less the credit note when it exceeded it. None while
    the order is sending: its balance is settled when it becomes sent."""
    if order.status not in SENT_STATES:
        return None
    excl = vat = 0
    for invoice in InvoiceRepository(session).of_order(order.id):
        sign = -1 if invoice.kind == InvoiceKind.credit_note else 1
        excl += sign * invoice.amount_excl_vat_cents
        vat += sign * invoice.vat_cents
    return Billed(excl, vat, excl + vat)


def last_event(last: datetime | None, rows: list[SummaryRow]) -> datetime | None:
    """The last submission or receipt of the order, if any."""
    return max([t for t in (last, *(r.last_receipt for r in rows)) if t], default=None)


def send_day(first: datetime | None, order: Order) -> date:
    """The Paris day sending started (or is due to): the day ages are counted on."""
    return (first or order.send_at).astimezone(windows.calendar_of(PARIS).zone).date()


def hidden_waves(session: Session, order: Order, mine: pl.DataFrame) -> list[str]:
    """The calendars whose wave the order's waves hide (see dispatch.waves.ShownWaves)."""
    k = get_settings().privacy.min_segment_size
    counts = {str(c): int(n) for c, n in mine.group_by("calendar").len().iter_rows()}
    return sorted(waves.shown_of(session, order, counts, k).hidden())


def as_pending(mine: pl.DataFrame, calendars: list[str]) -> pl.DataFrame:
    """The ledger with the recipients of these calendars as if nothing had been sent to them
    yet: no status but pending, no time, no error, no segment."""
    hid = pl.col("calendar").is_in(calendars)

    def unless_hidden(column: str, value: object) -> pl.Expr:
        return pl.when(hid).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)

    return mine.with_columns(
        unless_hidden("status", R.pending.value),
        unless_hidden("error", None),
        unless_hidden("parts", 0),
        unless_hidden("submitted_ms", None),
        unless_hidden("final_ms", None),
    ).cast({c: mine.schema[c] for c in ("status", "error", "parts", "submitted_ms", "final_ms")})


def aggregate(session: Session, order: Order, now: datetime) -> Aggregates:
    """The exact figures of the report of an order whose sending has started, as at `now` (or
    at its cutoff once the report is final)."""
    repo = ReportRepository(session)
    ledger = repo.ledger(order.id)
    mine = ledger.filter(pl.col("prospect_id") >= 0)  # control numbers are negative
    hidden: list[str] = []
    if order.status not in SENT_STATES:  # a hidden wave shows nothing before the order's end
        hidden = hidden_waves(session, order, mine)
        mine = as_pending(mine, hidden)
    first = _at(mine["submitted_ms"].min())  # type: ignore[arg-type]
    last = _at(mine["submitted_ms"].max())  # type: ignore[arg-type]
    final_at = _final_at(session, order, last)
    final = final_at is not None and now >= final_at
    cutoff = final_at if final else None
    until = cutoff or now
    # With a cutoff, the state at the cutoff: later receipts are left out.
    rows = summary(mine, cutoff, until)
    end = last_event(last, rows)
    reference_day = send_day(first, order)
    return Aggregates(
        final_at=final_at,
        final=final,
        until=until,
        first=first,
        last=last,
        rows=rows,
        opt_outs=opt_outs(session, order, hidden, first, until),
        histogram=histogram(mine, first, end, until),
        breakdowns=breakdowns(
            [(r.department, r.sex, r.n) for r in rows],
            ages(repo, order.id, mine["prospect_id"].to_numpy, reference_day),
        ),
        possible=possible(Criteria.model_validate(quote_of(session, order).criteria)),
        controls=_controls(ledger.filter(pl.col("prospect_id") < 0), cutoff),
        billed=billed(session, order),
    )
