"""The send report as a document: the protected counts with their labels, the timeline of the
waves, the cost as billed, the control numbers' outcome in words, and the notes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from datasets import reference
from dispatch import waves as shown_waves
from dispatch import windows
from dispatch.states import UNSENT
from dispatch.states import RecipientStatus as R
from kit.settings import get_settings
from reports import schemas
from reports.aggregate import (
    Aggregates,
    Billed,
    Controls,
    Span,
    SummaryRow,
    dispatch_started,
    reason_key,
    spans,
)
from reports.protect import Outcomes, Protected
from sales.accounts.service import organisation_name
from sales.orders.models import Order
from sales.quotes.repository import QuoteRepository
from segmentation.criteria import Criteria, describe

REASONS = {
    "unknown_subscriber": "Number not in service",
    "absent_subscriber": "Phone unreachable",
    "refused": "Refused by the carrier",
    "interrupted": "Interrupted while handed over",
    "carrier_interrupted": "Carrier interrupted",
}
CALENDARS = {"metro": "Metropolitan France"}


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


def _why_closed(cal: windows.Calendar, at: datetime) -> str:
    legal = windows.configured()
    local = at.astimezone(cal.zone)
    if local.weekday() not in legal.days:
        return f"no sending on {local.strftime('%A')}s"
    if windows.is_holiday(cal, local.date()):
        return "public holiday"
    hours = f"{legal.start:%H:%M}-{legal.end:%H:%M}"
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


def _deferral(key: str, order: Order, first: datetime | None) -> schemas.Deferral | None:
    """Why the wave did not start at the requested time, if it did not."""
    cal = windows.calendar_from_key(key)
    if windows.is_open(cal, order.send_at):
        return None
    try:
        opens = windows.next_opening(cal, order.send_at)
    except ValueError:
        return None
    return schemas.Deferral(
        calendar=key,
        label=calendar_label(key),
        requested=order.send_at,
        started=first or opens,
        reason=_why_closed(cal, order.send_at),
    )


def timeline(session: Session, order: Order, k: int, rows: list[SummaryRow]) -> schemas.Timeline:
    by_calendar = spans(rows)
    # Every calendar the criteria reach, whoever is in it (the list's shape tells nothing).
    shown = shown_waves.shown_of(
        session, order, {c: sp.recipients for c, sp in by_calendar.items()}, k
    )
    waves, deferrals = [], []
    for key in shown.recipients:
        own = by_calendar.get(key, Span(0, None, None))
        c = shown.own(key, own, hidden=Span(own.recipients, None, None))
        cal = windows.calendar_from_key(key)
        waves.append(
            schemas.Wave(
                calendar=key,
                label=calendar_label(key),
                time_zone=cal.time_zone,
                recipients=shown.recipients[key],
                first_submission=c.first,
                last_submission=c.last,
                pauses=_pauses(cal, c.first, c.last) if c.first and c.last else 0,
            )
        )
        if (deferral := _deferral(key, order, c.first)) is not None:
            deferrals.append(deferral)
    # The whole send's span counts every wave, the hidden ones too.
    firsts = [c.first for c in by_calendar.values() if c.first]
    lasts = [c.last for c in by_calendar.values() if c.last]
    receipts = [r.last_receipt for r in rows if r.last_receipt]
    return schemas.Timeline(
        requested_send_at=order.send_at,
        dispatch_started_at=dispatch_started(session, order),
        first_submission=min(firsts) if firsts else None,
        last_submission=max(lasts) if lasts else None,
        last_receipt=max(receipts) if receipts else None,
        waves=waves,
        deferrals=deferrals,
    )


def volumes(order: Order, out: Outcomes) -> schemas.Volumes:
    shown = out.shown
    return schemas.Volumes(
        quantity_ordered=order.quantity,
        recipients=shown["recipients"],
        submitted=shown["submitted"],
        delivered=shown["delivered"],
        failed=shown["failed"],
        failed_by_reason={reason_label(r.removeprefix("failed:")): shown[r] for r in out.reasons},
        expired=shown["expired"],
        awaiting_receipt=shown["awaiting_receipt"],
        unknown=shown["unknown"],
        opted_out_before_sending=shown["opted_out"],
        pending=shown["pending"],
    )


def opt_outs(data: Aggregates, shown: Protected) -> schemas.OptOuts:
    return schemas.OptOuts(
        stop_replies=shown.opt_outs["stop_reply"],
        stop_links=shown.opt_outs["stop_link"],
        total=shown.opt_outs["total"],
        window_start=data.first,
        window_end=data.until if data.first else None,
    )


def cost(data: Aggregates, out: Outcomes) -> schemas.Cost:
    """The messages billed (the ledger's handed-over count) and what the invoices bill."""
    submitted = out.shown["submitted"]
    segments = sum(r.parts for r in data.rows) if out.segments_shown else None
    billed: Billed | None = data.billed
    if not submitted:
        note = "nothing to show yet" if submitted == 0 else "hidden with the volume submitted"
        billed, segments = None, None
    elif billed is None:
        note = (
            "billed once the order is sent: the balance invoice (or credit note) is issued for "
            "the messages handed to the carrier"
        )
    else:
        note = (
            "what the order's deposit and balance invoice (or credit note) bill for the "
            "messages handed to the carrier"
        )
    return schemas.Cost(
        messages_billed=submitted,
        segments=segments,
        total_excl_vat_cents=billed.excl_vat_cents if billed else None,
        vat_cents=billed.vat_cents if billed else None,
        total_incl_vat_cents=billed.incl_vat_cents if billed else None,
        note=note,
    )


def controls(data: Controls) -> schemas.Controls:
    """The control numbers' outcome, in words (never a count)."""
    if not data.rows:
        return schemas.Controls(
            included=False,
            outcome="no control numbers rode along with this send",
            first_submission=None,
            last_receipt=None,
        )
    words: set[str] = set()
    for r in data.rows:
        if r.late or r.status == R.submitted:
            words.add("awaiting receipt")
        elif r.status == R.failed:
            words.add(f"failed ({reason_label(reason_key(r.error)).lower()})")
        elif r.status in UNSENT:
            words.add("not yet sent")
        else:
            words.add(r.status.replace("_", " "))
    outcome = ("all " + next(iter(words))) if len(words) == 1 else "; ".join(sorted(words))
    return schemas.Controls(
        included=True,
        outcome=outcome,
        first_submission=data.first_submission,
        last_receipt=data.last_receipt,
    )


def series(data: Aggregates, shown: Protected) -> schemas.Series:
    h = data.histogram
    if h is None:
        return schemas.Series(bucket_minutes=60, buckets=[])
    return schemas.Series(
        bucket_minutes=h.width_seconds // 60,
        buckets=[
            schemas.Bucket(
                start=h.start + timedelta(seconds=i * h.width_seconds),
                submitted=submitted,
                receipts=receipts,
            )
            for i, (submitted, receipts) in enumerate(shown.series)
        ],
    )


def breakdowns(data: Aggregates, shown: Protected) -> dict[str, list[schemas.Cell]]:
    return {
        dim: [
            schemas.Cell(value=t.value, label=t.label, recipients=shown.breakdowns[dim][t.value])
            for t in tallies
        ]
        for dim, tallies in data.breakdowns.items()
    }


def targeting(session: Session, order: Order) -> list[str]:
    """The order's targeting criteria, in words."""
    quote = QuoteRepository(session).get(order.quote_id, None)
    criteria = describe(Criteria.model_validate(quote.criteria)) if quote else []
    return criteria


def notes(k: int) -> list[str]:
    hours = get_settings().dispatch.receipt_window_hours
    return [
        f"Counts under {k} are never shown, and other counts are hidden with them when they "
        "would let one work them out by subtraction: such counts read 'hidden'.",
        "Control numbers of the broker receive every message to prove its content and "
        "delivery; they are reported apart and counted neither in the volumes nor in the bill.",
        f"Opt-outs (STOP replies and STOP links) are those of this order's recipients from the "
        f"first submission until the report is final ({hours} h "
        "after the last submission).",
        "Ages are the recipients' ages on the send day (the day sending started).",
    ]


def report(
    session: Session, order: Order, now: datetime, data: Aggregates, shown: Protected, k: int
) -> schemas.Report:
    """The report document of `order` at `now` from its exact and its protected figures."""
    return schemas.Report(
        order_id=order.id,
        state="final" if data.final else "in_progress",
        final_at=data.final_at,
        generated_at=now,
        order_status=order.status.value,
        broker=get_settings().seller.name,
        customer=organisation_name(session, order.organisation_id),
        sender=order.sender,
        message=order.message,
        criteria=targeting(session, order),
        minimum_count=k,
        volumes=volumes(order, shown.outcomes),
        opt_outs=opt_outs(data, shown),
        cost=cost(data, shown.outcomes),
        timeline=timeline(session, order, k, data.rows),
        series=series(data, shown),
        controls=controls(data.controls),
        breakdowns=breakdowns(data, shown),
        notes=notes(k),
    )
