"""The send report of an order, built from aggregates of its ledger and the base's attributes.

The order's ledger is read once (ReportRepository.ledger, Arrow) and every figure is an
aggregate of that frame in Polars: outcomes, segments, waves, the time series, the breakdowns.

Everything a customer sees goes through the suppression of segmentation.privacy: the outcome
counts form a tree (recipients -> submitted -> delivered, failed -> reasons...) protected at
every level; breakdowns and time series are flat dimensions. Counts are exact (they match the
invoice), never noisy, and never under the minimum count. No phone number or reply text is read
into the report. The frame holds each recipient's prospect id and phone HMAC only to join the
base's birth dates and the opt-out list; only counts leave this module.

A report is `in_progress` from the start of sending; it becomes `final` when the receipt window
(settings.receipt_window_hours) after the last submission closes. A final report is the state
at that instant: receipts or opt-outs that come later are left out, so building it again gives
the same report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
from sqlalchemy.orm import Session

from datasets import reference
from datasets import snapshot as snap
from datasets.geography import PARIS
from dispatch import windows
from dispatch.states import HANDED_OVER
from kit.settings import get_settings
from reports import schemas
from reports.repository import ReportRepository
from sales.accounts.service import organisation_name
from sales.orders import payments as orders
from sales.orders.models import Order
from sales.orders.repository import OrderRepository
from sales.orders.states import OrderStatus
from sales.quotes.repository import QuoteRepository
from sales.quotes.service import dimension_values, region_of_department
from segmentation import privacy
from segmentation.criteria import Criteria, describe

S = OrderStatus
SENT_STATES = (S.sent, S.reported, S.closed)
BUCKETS = (300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 48
REASONS = {
    "unknown_subscriber": "Number not in service",
    "absent_subscriber": "Phone unreachable",
    "refused": "Refused by the carrier",
    "interrupted": "Interrupted while handed over",
    "carrier_interrupted": "Carrier interrupted",
}
_SAFE_REASON = re.compile(r"^[A-Za-z_ -]{1,40}$")  # carrier codes; no digits can pass
CALENDARS = {"metro": "Metropolitan France"}


def reason_key(error: str | None) -> str:
    """A carrier's failure code as a report key: words only, never anything with digits."""
    if not error or not _SAFE_REASON.match(error):
        return "other"
    return error.strip().lower().replace(" ", "_")


def reason_label(key: str) -> str:
    return REASONS.get(key, key.replace("_", " ").capitalize())


def calendar_label(key: str) -> str:
    if key in CALENDARS:
        return CALENDARS[key]
    names = dict(zip(reference.departments()["code"], reference.departments()["name"], strict=True))
    if key.startswith("alsace-moselle-"):  # two holiday calendars: Moselle, and Alsace
        departments = windows.departments_of_calendar(key)
        return "Alsace-Moselle: " + ", ".join(names.get(d, d) for d in departments)
    return str(names.get(key, key))


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


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _late(cutoff: datetime | None) -> pl.Expr:
    """A receipt after the cutoff (a final report is the state at the cutoff)."""
    if cutoff is None:
        return pl.lit(False)
    return (pl.col("final_ms") > _ms(cutoff)).fill_null(False)


def _summary(ledger: pl.DataFrame, cutoff: datetime | None, until: datetime) -> list[SummaryRow]:
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


def _histograms(
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


def _opt_outs(
    repo: ReportRepository, ledger: pl.DataFrame, start: datetime, end: datetime
) -> dict[str, int]:
    """STOP replies and STOP-link visits, per kind, of the recipients who were sent the
    message, made between `start` and `end`."""
    stops = repo.opt_outs(start, end)
    if stops.is_empty():
        return {}
    sent = ledger.filter(pl.col("submitted_ms").is_not_null()).select("phone_hmac")
    kinds = sent.join(stops, on="phone_hmac").group_by("reason").len()
    return {str(r): int(n) for r, n in kinds.iter_rows()}


def _final_at(session: Session, order: Order, last: datetime | None) -> datetime | None:
    """When the report becomes final: the receipt window after the last submission, once the
    order is sent (None while sending goes on)."""
    if order.status not in SENT_STATES:
        return None
    hours = timedelta(hours=get_settings().receipt_window_hours)
    if last is not None:
        return last + hours
    sent = [e.at for e in OrderRepository(session).events(order.id) if e.to_status == "sent"]
    return (sent[-1] if sent else order.updated_at) + hours


def _outcome_tree(rows: list[SummaryRow] | list[OutcomeRow]) -> privacy.Node:
    leaves: dict[str, int] = {}
    reasons: dict[str, int] = {}

    def add(key: str, n: int) -> None:
        leaves[key] = leaves.get(key, 0) + n

    for r in rows:
        if r.status in ("pending", "submitting"):
            add("pending", r.n)
        elif r.status == "submitted" or (r.late and r.status in ("delivered", "failed", "expired")):
            add("awaiting_receipt", r.n)
        elif r.status == "failed":
            key = "failed:" + reason_key(r.error)
            reasons[key] = reasons.get(key, 0) + r.n
        elif r.status in ("delivered", "expired", "unknown", "opted_out"):
            add(r.status, r.n)
        else:  # a status added to the ledger later: counted, never dropped
            add("unknown", r.n)
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


def _shown(tree: privacy.Node, k: int, public: tuple[str, ...] = ()) -> dict[str, int | None]:
    hidden = privacy.suppress_tree(tree, k, public)
    return {n.name: None if n.name in hidden else n.exact for n in tree.walk()}


def _ages(prospect_ids: np.ndarray, on: date) -> dict[str, int]:
    """Recipients per age band on `on`, from the current base's birth dates (a prospect removed
    by a refresh since is counted under 'unknown')."""
    counts = {b: 0 for b, _, _ in reference.AGE_BANDS} | {"unknown": 0}
    if len(prospect_ids) == 0:
        return counts
    current = snap.current(get_settings().base_dir)
    base = pl.scan_parquet(current.attributes).select("prospect_id", "birth_date")
    ids = pl.LazyFrame({"prospect_id": prospect_ids})
    born = pl.col("birth_date")
    before_birthday = (born.dt.month() > on.month) | (
        (born.dt.month() == on.month) & (born.dt.day() > on.day)
    )
    age = pl.lit(on.year) - born.dt.year() - before_birthday.cast(pl.Int32)
    band = pl.lit("unknown")
    for label, lo, _ in reference.AGE_BANDS:  # ascending: the last true bound wins
        band = pl.when(age >= lo).then(pl.lit(label)).otherwise(band)
    band = pl.when(born.is_null()).then(pl.lit("unknown")).otherwise(band)
    out = (
        ids.join(base, on="prospect_id", how="left")
        .select(band.alias("band"))
        .group_by("band")
        .len()
        .collect()
    )
    for b, n in out.iter_rows():
        counts[str(b)] = counts.get(str(b), 0) + int(n)
    return counts


def _cells(
    counts: Mapping[str, int], labels: list[tuple[str, str]], k: int, hide_all: bool
) -> list[schemas.Cell]:
    """Every possible cell of a dimension (empty ones too: the listing tells nothing)."""
    full = {v: counts.get(v, 0) for v, _ in labels}
    shown = privacy.suppress_counts(full, k)
    return [
        schemas.Cell(value=v, label=label, recipients=None if hide_all else shown[v])
        for v, label in labels
    ]


def _breakdowns(
    ledger: pl.DataFrame,
    rows: list[SummaryRow],
    on: date,
    k: int,
    hide_all: bool,
) -> dict[str, list[schemas.Cell]]:
    dims = dimension_values()
    region_of = region_of_department()
    regions: dict[str, int] = {}
    sexes: dict[str, int] = {}
    for row in rows:
        r = region_of.get(row.department, "unknown")
        regions[r] = regions.get(r, 0) + row.n
        sexes[row.sex or "unknown"] = sexes.get(row.sex or "unknown", 0) + row.n
    ages = _ages(ledger["prospect_id"].to_numpy(), on)
    return {
        "region": _cells(regions, dims["region"], k, hide_all),
        "age_band": _cells(ages, [*dims["age_band"], ("unknown", "Unknown")], k, hide_all),
        "sex": _cells(sexes, dims["sex"], k, hide_all),
    }


def _why_closed(cal: windows.Calendar, at: datetime) -> str:
    s = get_settings()
    local = at.astimezone(cal.zone)
    if local.weekday() not in s.send_days:
        return f"no sending on {local.strftime('%A')}s"
    if windows.is_holiday(cal, local.date()):
        return "public holiday"
    hours = f"{s.send_window_start:%H:%M}-{s.send_window_end:%H:%M}"
    return f"outside the sending hours ({hours} local time)"


def _pauses(cal: windows.Calendar, first: datetime, last: datetime) -> int:
    """Times the window closed between the first and the last submission of a wave."""
    pauses, at = 0, first
    try:
        while windows.is_open(cal, at) and windows.closing(cal, at) < last:
            at = windows.next_opening(cal, windows.closing(cal, at))
            pauses += 1
    except ValueError:  # no window within the horizon: nothing more to tell
        pass
    return pauses


@dataclass(frozen=True)
class _Span:
    recipients: int
    first: datetime | None
    last: datetime | None


def _spans(rows: list[SummaryRow]) -> dict[str, _Span]:
    """Per calendar: how many recipients, first and last submission."""
    out: dict[str, _Span] = {}
    for r in rows:
        was = out.get(r.calendar, _Span(0, None, None))
        firsts = [t for t in (was.first, r.first) if t]
        lasts = [t for t in (was.last, r.last) if t]
        out[r.calendar] = _Span(
            was.recipients + r.n, min(firsts) if firsts else None, max(lasts) if lasts else None
        )
    return out


def _timeline(session: Session, order: Order, k: int, rows: list[SummaryRow]) -> schemas.Timeline:
    spans = _spans(rows)
    shown = privacy.suppress_counts({c: sp.recipients for c, sp in spans.items()}, k)
    waves, deferrals = [], []
    for key in sorted(spans):
        c = spans[key]
        if shown[key] is None:  # a hidden wave tells nothing of when its few people were sent
            c = _Span(c.recipients, None, None)
        cal = windows.calendar_from_key(key)
        waves.append(
            schemas.Wave(
                calendar=key,
                label=calendar_label(key),
                time_zone=cal.time_zone,
                recipients=shown[key],
                first_submission=c.first,
                last_submission=c.last,
                pauses=_pauses(cal, c.first, c.last) if c.first and c.last else 0,
            )
        )
        if not windows.is_open(cal, order.send_at):
            try:
                opens = windows.next_opening(cal, order.send_at)
            except ValueError:
                continue
            deferrals.append(
                schemas.Deferral(
                    calendar=key,
                    label=calendar_label(key),
                    requested=order.send_at,
                    started=c.first or opens,
                    reason=_why_closed(cal, order.send_at),
                )
            )
    # The whole send's span counts every wave, the hidden ones too.
    firsts = [c.first for c in spans.values() if c.first]
    lasts = [c.last for c in spans.values() if c.last]
    receipts = [r.last_receipt for r in rows if r.last_receipt]
    started = [
        e.at for e in OrderRepository(session).events(order.id) if e.action == "dispatch_started"
    ]
    return schemas.Timeline(
        requested_send_at=order.send_at,
        dispatch_started_at=started[0] if started else None,
        first_submission=min(firsts) if firsts else None,
        last_submission=max(lasts) if lasts else None,
        last_receipt=max(receipts) if receipts else None,
        waves=waves,
        deferrals=deferrals,
    )


def _series(
    ledger: pl.DataFrame,
    first: datetime | None,
    end: datetime | None,
    until: datetime,
    k: int,
    receipts_shown: bool,
) -> schemas.Series:
    """Submissions and receipts per time bucket, the bucket chosen so that the whole send fits
    in at most MAX_BUCKETS of them (from the first submission to `end`, the last event)."""
    if first is None or end is None:
        return schemas.Series(bucket_minutes=60, buckets=[])
    span = (end - first).total_seconds() + 1
    width = next((w for w in BUCKETS if span / w <= MAX_BUCKETS), BUCKETS[-1])
    start = datetime.fromtimestamp(int(first.timestamp()) // width * width, UTC)
    n = int((end - start).total_seconds() // width) + 1
    sub, rec = _histograms(ledger, start, width, until)
    keys = [str(i) for i in range(n)]
    # Each line adds up to a count of the report: submissions to `submitted` (public), receipts
    # to `submitted` less `awaiting_receipt`. Buckets are suppressed among themselves; the
    # receipts line is hidden whole when `awaiting_receipt` is (its total would give it away).
    shown_sub = privacy.suppress_counts({i: sub.get(int(i), 0) for i in keys}, k, zeros_shown=True)
    shown_rec: dict[str, int | None] = dict.fromkeys(keys)
    if receipts_shown:
        shown_rec = privacy.suppress_counts(
            {i: rec.get(int(i), 0) for i in keys}, k, zeros_shown=True
        )
    return schemas.Series(
        bucket_minutes=width // 60,
        buckets=[
            schemas.Bucket(
                start=start + timedelta(seconds=int(i) * width),
                submitted=shown_sub[i],
                receipts=shown_rec[i],
            )
            for i in keys
        ],
    )


def _controls(ledger: pl.DataFrame, cutoff: datetime | None) -> schemas.Controls:
    """The control numbers' outcome (rows with a negative prospect id)."""
    rows = _outcomes(ledger, cutoff)
    first = _at(ledger["submitted_ms"].min())  # type: ignore[arg-type]
    last = _at(ledger["final_ms"].max())  # type: ignore[arg-type]
    if not rows:
        return schemas.Controls(
            included=False,
            outcome="no control numbers rode along with this send",
            first_submission=None,
            last_receipt=None,
        )
    words: set[str] = set()
    for r in rows:
        if r.late or r.status == "submitted":
            words.add("awaiting receipt")
        elif r.status == "failed":
            words.add(f"failed ({reason_label(reason_key(r.error)).lower()})")
        elif r.status in ("pending", "submitting"):
            words.add("not yet sent")
        else:
            words.add(r.status.replace("_", " "))
    outcome = ("all " + next(iter(words))) if len(words) == 1 else "; ".join(sorted(words))
    return schemas.Controls(
        included=True, outcome=outcome, first_submission=first, last_receipt=last
    )


def final_at(session: Session, order: Order, now: datetime) -> datetime | None:
    """When the order's report becomes final (None while it is still sending)."""
    return _final_at(session, order, ReportRepository(session).last_submission(order.id))


def build(session: Session, order: Order, now: datetime) -> schemas.Report:
    """The report of an order whose sending has started (the caller checks that)."""
    s = get_settings()
    k = s.min_segment_size
    repo = ReportRepository(session)
    ledger = repo.ledger(order.id, stops_since=order.created_at)  # before any submission
    mine = ledger.filter(pl.col("prospect_id") >= 0)  # control numbers are negative
    first = _at(mine["submitted_ms"].min())  # type: ignore[arg-type]
    last = _at(mine["submitted_ms"].max())  # type: ignore[arg-type]
    final_at = _final_at(session, order, last)
    final = final_at is not None and now >= final_at
    cutoff = final_at if final else None
    until = cutoff or now
    # With a cutoff, the state at the cutoff: later receipts are left out.
    rows = _summary(mine, cutoff, until)

    tree = _outcome_tree(rows)
    # Published elsewhere whatever their size: the recipients after re-validation (the sum
    # of the waves of the order) and the volume submitted (billed on the invoice). Their
    # parts are protected around them.
    shown = _shown(tree, k, public=("recipients", "submitted"))
    failed = next(p for p in tree.walk() if p.name == "failed")
    volumes = schemas.Volumes(
        quantity_ordered=order.quantity,
        recipients=shown["recipients"],
        submitted=shown["submitted"],
        delivered=shown["delivered"],
        failed=shown["failed"],
        failed_by_reason={
            reason_label(p.name.removeprefix("failed:")): shown[p.name] for p in failed.parts
        },
        expired=shown["expired"],
        awaiting_receipt=shown["awaiting_receipt"],
        unknown=shown["unknown"],
        opted_out_before_sending=shown["opted_out"],
        pending=shown["pending"],
    )

    stops = _opt_outs(repo, mine, first, until) if first else {}
    opt_tree = privacy.Node(
        "total",
        sum(stops.values()),
        (
            privacy.Node("stop_reply", stops.get("stop_reply", 0)),
            privacy.Node("stop_link", stops.get("stop_link", 0)),
        ),
    )
    opt = _shown(opt_tree, k)
    opt_outs = schemas.OptOuts(
        stop_replies=opt["stop_reply"],
        stop_links=opt["stop_link"],
        total=opt["total"],
        window_start=first,
        window_end=until if first else None,
    )

    submitted = shown["submitted"]
    if submitted:
        p = orders.reprice(session, order, submitted)
        cost = schemas.Cost(
            messages_billed=submitted,
            # Segments count the messages the carrier took: with one segment each, they
            # would give away how many it refused on the spot unless every failure reason
            # is shown.
            segments=sum(r.parts for r in rows)
            if all(shown[p.name] is not None for p in failed.parts)
            else None,
            total_excl_vat_cents=p.total_excl_vat_cents,
            vat_cents=p.vat_cents,
            total_incl_vat_cents=p.total_incl_vat_cents,
            note="the order's price grid applied to the messages handed to the carrier; the "
            "balance invoice (or credit note) is issued for it once the order is sent",
        )
    else:
        cost = schemas.Cost(
            messages_billed=submitted,
            segments=None,
            total_excl_vat_cents=None,
            vat_cents=None,
            total_incl_vat_cents=None,
            note="nothing to show yet" if submitted == 0 else "hidden with the volume submitted",
        )

    reference_day = (first or order.send_at).astimezone(windows.calendar_of(PARIS).zone).date()
    quote = QuoteRepository(session).get(order.quote_id, None)
    criteria = describe(Criteria.model_validate(quote.criteria)) if quote else []
    notes = [
        f"Counts under {k} are never shown, and other counts are hidden with them when they "
        "would let one work them out by subtraction: such counts read 'hidden'.",
        "Control numbers of the broker receive every message to prove its content and "
        "delivery; they are reported apart and counted neither in the volumes nor in the bill.",
        f"Opt-outs (STOP replies and STOP links) are those of this order's recipients from the "
        f"first submission until the report is final ({s.receipt_window_hours} h after the last "
        "submission).",
    ]
    return schemas.Report(
        order_id=order.id,
        state="final" if final else "in_progress",
        final_at=final_at,
        generated_at=now,
        order_status=order.status.value,
        broker=s.seller_name,
        customer=organisation_name(session, order.organisation_id),
        sender=order.sender,
        message=order.message,
        criteria=criteria,
        minimum_count=k,
        volumes=volumes,
        opt_outs=opt_outs,
        cost=cost,
        timeline=_timeline(session, order, k, rows),
        series=_series(
            mine,
            first,
            max([t for t in (last, *(r.last_receipt for r in rows)) if t], default=None),
            until,
            k,
            receipts_shown=shown["awaiting_receipt"] is not None,
        ),
        controls=_controls(ledger.filter(pl.col("prospect_id") < 0), cutoff),
        breakdowns=_breakdowns(mine, rows, reference_day, k, shown["recipients"] is None),
        notes=notes,
    )
