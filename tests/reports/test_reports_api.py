"""GET /v1/orders/{id}/report: what a customer sees of a send, in every format, and what it
never sees."""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from datasets import reference
from dispatch import intake
from dispatch.carriers.base import Receipt
from dispatch.models import Recipient
from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from reports import build, service
from sales.orders.models import Order
from tests.conftest import Canary, ScanningClient, auth
from tests.factories import SentOrder, create_order
from tests.reports.conftest import QUANTITY, walk_counts


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the service clock (the order was sent days ahead of the real clock)."""

    def set_(when: datetime) -> None:
        monkeypatch.setattr(clock, "now", lambda: when)

    return set_


def report(client: ScanningClient, key: str, order_id: str, fmt: str = "json") -> Any:
    return client.get(f"/v1/orders/{order_id}/report", params={"format": fmt}, headers=auth(key))


def pdf_text(content: bytes) -> str:
    return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(content)).pages)


def exact(order_id: str) -> dict[str, int]:
    """The truth, straight from the ledger (the order's own recipients)."""
    with unit_of_work() as session:
        rows = session.execute(
            select(Recipient.status, Recipient.error).where(
                Recipient.order_id == order_id, Recipient.prospect_id >= 0
            )
        ).all()
    out: dict[str, int] = {"recipients": len(rows)}
    for status, error in rows:
        out[status] = out.get(status, 0) + 1
        if status == "failed":
            out[f"failed:{error}"] = out.get(f"failed:{error}", 0) + 1
    return out


def test_a_report_in_progress_has_everything_a_customer_needs(
    app_client: ScanningClient, org_keys: dict[str, str], sent_order: SentOrder, at: Any
) -> None:
    at(sent_order.last_submission + timedelta(hours=2))
    r = report(app_client, org_keys["acme"], sent_order.id)
    assert r.status_code == 200, r.text
    doc = r.json()
    truth = exact(sent_order.id)
    k = get_settings().privacy.min_segment_size
    assert doc["state"] == "in_progress"
    assert doc["final_at"] == (
        sent_order.last_submission + timedelta(hours=get_settings().dispatch.receipt_window_hours)
    ).isoformat().replace("+00:00", "Z")
    assert doc["customer"] == "Acme"
    assert doc["broker"] == get_settings().seller.name
    assert doc["criteria"] == ["Departments: Morbihan, Martinique"]
    v = doc["volumes"]
    assert v["quantity_ordered"] == QUANTITY
    assert v["recipients"] == truth["recipients"] == QUANTITY
    billed = sum(truth.get(s, 0) for s in ("submitted", "delivered", "failed", "expired"))
    assert v["submitted"] == billed
    assert v["delivered"] == truth["delivered"]
    reasons = v["failed_by_reason"]
    # Under k: hidden, and so is the smallest other reason, else the failed total minus the
    # shown reasons would tell it.
    assert truth["failed:refused"] < k
    assert reasons["Refused by the carrier"] is None
    shown = {
        "Number not in service": truth["failed:unknown_subscriber"],
        "Phone unreachable": truth["failed:absent_subscriber"],
    }
    # Exactly one of the two larger reasons is hidden with it: the smaller (ties: by code).
    hidden = [r for r in shown if reasons[r] is None]
    assert len(hidden) == 1
    assert shown[hidden[0]] == min(shown.values())
    assert all(reasons[r] == shown[r] for r in shown if r not in hidden)
    # Expired and awaiting a receipt are both under k, and together too: the failed total is
    # hidden with them (the smallest other part of the submitted volume).
    awaiting = truth.get("submitted", 0)
    assert truth["expired"] < k
    assert v["expired"] is None
    assert awaiting < k
    assert v["awaiting_receipt"] is None
    assert truth["expired"] + awaiting < k
    assert v["failed"] is None
    assert v["pending"] == 0
    assert v["unknown"] == 0
    # Opt-outs of this order's recipients.
    assert doc["opt_outs"] == {
        "stop_replies": 110,
        "stop_links": 105,
        "total": 215,
        "window_start": sent_order.started.isoformat().replace("+00:00", "Z"),
        "window_end": (sent_order.last_submission + timedelta(hours=2))
        .isoformat()
        .replace("+00:00", "Z"),
    }
    # Cost: the order's grid at the billed volume. The segments (two per message the carrier
    # took) would give away how many it refused on the spot, a hidden reason: hidden too.
    assert doc["cost"]["messages_billed"] == billed
    assert doc["cost"]["segments"] is None
    # The series add up to published counts only: submissions to the billed volume, and the
    # receipts line is hidden whole while `awaiting_receipt` is hidden.
    buckets = doc["series"]["buckets"]
    if all(b["submitted"] is not None for b in buckets):
        assert sum(b["submitted"] for b in buckets) == billed
    if v["awaiting_receipt"] is None:
        assert all(b["receipts"] is None for b in buckets)
    invoices = app_client.get(
        "/v1/invoices", params={"order_id": sent_order.id}, headers=auth(org_keys["acme"])
    ).json()["items"]
    lines = [ln["label"] for i in invoices if i["kind"] != "deposit" for ln in i["lines"]]
    assert any(f"File rental: {billed} contacts" in ln for ln in lines)
    # Timeline: two waves (metropolitan and Martinique), submissions ten minutes apart.
    t = doc["timeline"]
    assert {w["calendar"] for w in t["waves"]} == {"metro", "972"}
    assert t["first_submission"].startswith(sent_order.started.isoformat()[:16])
    assert doc["series"]["buckets"]
    assert doc["series"]["bucket_minutes"] in (5, 15)
    assert doc["controls"]["included"] is True
    assert not re.search(r"\d", doc["controls"]["outcome"])  # words, never a count or number
    # Nothing under k, anywhere (zero is no one).
    small = [(p, n) for p, n in walk_counts(doc) if 0 < n < k]
    assert small == []


def test_breakdowns_match_the_base_and_hide_small_cells(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    sent_order: SentOrder,
    attributes: pl.DataFrame,
    at: Any,
) -> None:
    at(sent_order.last_submission + timedelta(hours=2))
    doc = report(app_client, org_keys["acme"], sent_order.id).json()
    with unit_of_work() as session:
        ids = list(
            session.scalars(
                select(Recipient.prospect_id).where(
                    Recipient.order_id == sent_order.id, Recipient.prospect_id >= 0
                )
            )
        )
    mine = attributes.filter(pl.col("prospect_id").is_in(ids))
    on: date = sent_order.started.astimezone(clock.PARIS).date()
    ages = mine.select(
        (
            pl.lit(on.year)
            - pl.col("birth_date").dt.year()
            - (
                (pl.col("birth_date").dt.month() > on.month)
                | (
                    (pl.col("birth_date").dt.month() == on.month)
                    & (pl.col("birth_date").dt.day() > on.day)
                )
            ).cast(pl.Int32)
        ).alias("age")
    )["age"].to_list()
    k = get_settings().privacy.min_segment_size
    truth = {band: sum(lo <= a <= hi for a in ages) for band, lo, hi in reference.AGE_BANDS}
    for band, n in truth.items():
        cell = next(c for c in doc["breakdowns"]["age_band"] if c["value"] == band)
        assert cell["recipients"] in (None, n)
        if n < k:
            assert cell["recipients"] is None
    sexes = doc["breakdowns"]["sex"]
    assert {c["value"] for c in sexes} == {"F", "M"}
    truth_sex = {s: int((mine["sex"] == s).sum()) for s in ("F", "M")}
    assert sum(truth_sex.values()) == QUANTITY  # every recipient counted under F or M
    for c in sexes:  # each cell is its exact count, or hidden
        assert c["recipients"] in (None, truth_sex[c["value"]])
    if min(truth_sex.values()) >= k:
        assert {c["value"]: c["recipients"] for c in sexes} == truth_sex
    shown_regions = {c["label"]: c["recipients"] for c in doc["breakdowns"]["region"]}
    assert shown_regions["Bretagne"] is not None
    assert shown_regions["Martinique"] is not None
    assert shown_regions["Bretagne"] + shown_regions["Martinique"] == QUANTITY
    assert shown_regions["Normandie"] is None  # empty: not even its emptiness is shown
    if all(n >= k for n in truth.values()):  # every band of this order is large enough
        shown = {c["value"]: c["recipients"] for c in doc["breakdowns"]["age_band"]}
        assert shown == {**truth, "unknown": None}  # an empty cell is hidden, not shown as 0
    hidden = [
        c["value"]
        for c in doc["breakdowns"]["age_band"]
        if c["recipients"] is None and truth.get(c["value"], 0) > 0
    ]
    # A lone hidden cell would be the total minus the others; hidden ones add up to k or more.
    assert not hidden or (len(hidden) >= 2 and sum(truth[b] for b in hidden) >= k)


def test_each_bucket_of_the_series_holds_the_messages_of_its_interval(
    app_client: ScanningClient, org_keys: dict[str, str], sent_order: SentOrder, at: Any
) -> None:
    """Chunks go out ten minutes apart and their receipts half an hour later: every shown
    bucket [start, start + width) counts exactly the ledger's messages handed over, and the
    receipts, within it (a bucket rounded to the nearest instead would shift half of them)."""
    now = sent_order.last_submission + timedelta(hours=2)
    at(now)
    series = report(app_client, org_keys["acme"], sent_order.id).json()["series"]
    width = timedelta(minutes=series["bucket_minutes"])
    with unit_of_work() as session:
        rows = session.execute(
            select(Recipient.submitted_at, Recipient.final_at).where(
                Recipient.order_id == sent_order.id,
                Recipient.prospect_id >= 0,
                Recipient.status.in_(("submitted", "delivered", "failed", "expired")),
            )
        ).all()
    handed_at = [t for s, f in rows if (t := s or f) is not None]
    receipt_at = [f for _, f in rows if f is not None and f <= now]
    checked = 0
    for bucket in series["buckets"]:
        start = datetime.fromisoformat(bucket["start"])
        handed = [t for t in handed_at if start <= t < start + width]
        receipts = [t for t in receipt_at if start <= t < start + width]
        if bucket["submitted"] is not None:
            assert bucket["submitted"] == len(handed)
            checked += 1
        if bucket["receipts"] is not None:
            assert bucket["receipts"] == len(receipts)
            checked += 1
    assert checked >= 4  # chunks of 200 in 5- or 15-minute buckets: most are shown


def test_the_report_becomes_final_and_stays_so(
    app_client: ScanningClient, org_keys: dict[str, str], sent_order: SentOrder, at: Any
) -> None:
    window = timedelta(hours=get_settings().dispatch.receipt_window_hours)
    final_at = sent_order.last_submission + window
    at(final_at + timedelta(minutes=1))
    first = report(app_client, org_keys["acme"], sent_order.id).json()
    assert first["state"] == "final"
    # A receipt after the window changes nothing in a final report.
    with unit_of_work() as session:
        late = session.scalars(
            select(Recipient).where(
                Recipient.order_id == sent_order.id, Recipient.status == "submitted"
            )
        ).first()
        assert late is not None
        assert late.message_id is not None
        intake.apply_receipts(
            session, [Receipt(late.message_id, "delivered")], final_at + timedelta(hours=1)
        )
    at(final_at + timedelta(hours=2))
    again = report(app_client, org_keys["acme"], sent_order.id).json()
    for d in (first, again):
        d.pop("generated_at")
    assert again == first
    # The scheduler's step: the order becomes `reported`, once.
    with unit_of_work() as session:
        assert service.finalise_due(session, final_at - timedelta(minutes=1)) == []
    with unit_of_work() as session:
        assert sent_order.id in service.finalise_due(session, final_at + timedelta(minutes=1))
    with unit_of_work() as session:
        order = session.get(Order, sent_order.id)
        assert order is not None
        assert order.status.value == "reported"
        assert sent_order.id not in service.finalise_due(session, final_at + timedelta(days=1))
    assert report(app_client, org_keys["acme"], sent_order.id).status_code == 200


def test_bad_requests(
    app_client: ScanningClient, org_keys: dict[str, str], sent_order: SentOrder
) -> None:
    other = report(app_client, org_keys["globex"], sent_order.id)
    assert other.status_code == 404
    assert other.json()["error"] == "order_not_found"
    for fmt in ("csv", "html", "pdf"):
        assert report(app_client, org_keys["globex"], sent_order.id, fmt).status_code == 404
    assert report(app_client, org_keys["acme"], "not-an-id").status_code == 404
    unsent = create_order(app_client, org_keys["acme"])
    r = report(app_client, org_keys["acme"], unsent["id"])
    assert r.status_code == 409
    assert r.json()["current_status"] == "awaiting_deposit"
    assert "awaiting_deposit" in r.json()["detail"]
    bad = report(app_client, org_keys["acme"], sent_order.id, "docx")
    assert bad.status_code == 422
    assert bad.json()["formats"] == ["json", "csv", "html", "pdf"]
    assert "json, csv, html, pdf" in bad.json()["detail"]
    assert app_client.get(f"/v1/orders/{sent_order.id}/report").status_code == 401
    # Account managers read every organisation's reports.
    assert report(app_client, org_keys["am"], sent_order.id).status_code == 200


def test_no_format_leaks_a_number_or_a_prospect_id(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    sent_order: SentOrder,
    canary: Canary,
    base_numbers: list[str],
    at: Any,
) -> None:
    at(sent_order.last_submission + timedelta(hours=2))
    # The canary itself works: it finds a number of the base and a prospect id.
    assert canary.hits(f"x {base_numbers[0]} y")
    assert canary.hits(f"id {next(iter(canary.ids))}.")
    texts = {}
    for fmt in ("json", "csv", "html", "pdf"):
        r = report(app_client, org_keys["acme"], sent_order.id, fmt)
        assert r.status_code == 200
        texts[fmt] = pdf_text(r.content) if fmt == "pdf" else r.text
    assert r.content.startswith(b"%PDF")
    assert "Send report" in texts["pdf"]
    assert "Delivery funnel" in texts["pdf"]
    assert texts["csv"].startswith("section,item,value\n")
    assert "volumes,delivered," in texts["csv"]
    assert ",hidden" in texts["csv"]
    invoices = app_client.get(
        "/v1/invoices", params={"order_id": sent_order.id}, headers=auth(org_keys["acme"])
    ).json()["items"]
    for inv in invoices:
        for fmt in ("html", "pdf"):
            r = app_client.get(
                f"/v1/invoices/{inv['id']}", params={"format": fmt}, headers=auth(org_keys["acme"])
            )
            assert r.status_code == 200
            texts[f"invoice {inv['number']} {fmt}"] = (
                pdf_text(r.content) if fmt == "pdf" else r.text
            )
    with unit_of_work() as session:
        ids = {
            str(i)
            for i in session.scalars(
                select(Recipient.prospect_id).where(Recipient.order_id == sent_order.id)
            )
        }
    for name, text in texts.items():
        assert canary.hits(text) == [], name
        digits = set(re.findall(r"-?\d{6,}", text))
        assert not digits & ids, f"{name} holds a prospect id of the order"
    # No reply text either: the simulated replies said STOP; the report only counts them.
    assert "STOP replies" in texts["html"]


def test_the_report_is_built_without_http_for_the_broker_tools(sent_order: SentOrder) -> None:
    """The in-process builder used by the API and by the demo/CLI."""
    with unit_of_work() as session:
        doc = service.report_of(session, sent_order.id, sent_order.last_submission)
        assert doc.order_id == sent_order.id
        order = session.get(Order, sent_order.id)
        assert order is not None
        final = build.final_at(session, order, sent_order.last_submission)
        assert final == sent_order.last_submission + timedelta(
            hours=get_settings().dispatch.receipt_window_hours
        )


def test_the_report_exists_as_soon_as_sending_starts(
    app_client: ScanningClient, org_keys: dict[str, str], at: Any
) -> None:
    from dispatch import flows
    from segmentation import runtime
    from tests.factories import at_send_time, scheduled_order

    order = scheduled_order(app_client, org_keys, {"departments": ["22"]}, 150)
    assert report(app_client, org_keys["acme"], order["id"]).json()["current_status"] == (
        "scheduled"
    )
    now = at_send_time(order)
    with unit_of_work() as session:
        assert flows.start(session, order["id"], runtime.current(), now)
    at(now)
    doc = report(app_client, org_keys["acme"], order["id"]).json()
    assert doc["order_status"] == "dispatching"
    assert doc["state"] == "in_progress"
    assert doc["final_at"] is None
    assert doc["volumes"]["recipients"] == 150
    assert doc["volumes"]["pending"] == 150
    assert doc["volumes"]["submitted"] == 0
    assert doc["series"]["buckets"] == []
    assert doc["cost"]["total_incl_vat_cents"] is None
    html = report(app_client, org_keys["acme"], order["id"], "html").text
    assert html.count('<svg class="chart') == 2


def test_each_wave_is_named_after_its_places() -> None:
    """The two calendars of Alsace-Moselle (their public holidays differ) are told apart."""
    assert build.calendar_label("metro") == "Metropolitan France"
    assert build.calendar_label("alsace-moselle-57") == "Alsace-Moselle: Moselle"
    assert build.calendar_label("alsace-moselle-6AE") == "Alsace-Moselle: Bas-Rhin, Haut-Rhin"
    assert build.calendar_label("972") == "Martinique"


def test_a_hidden_wave_tells_nothing_of_when_it_was_sent(sent_order: SentOrder) -> None:
    at = sent_order.started

    def row(calendar: str, n: int, minutes: int) -> build.SummaryRow:
        sent = at + timedelta(minutes=minutes)
        return build.SummaryRow(calendar, "", "F", "delivered", None, False, n, n, sent, sent, sent)

    rows = [row("metro", 500, 0), row("972", 300, 5), row("976", 3, 7)]
    with unit_of_work() as session:
        order = session.get(Order, sent_order.id)
        assert order is not None
        timeline = build._timeline(session, order, 100, rows)
    waves = {w.calendar: w for w in timeline.waves}
    assert waves["976"].recipients is None  # 3 people
    assert waves["972"].recipients is None  # hidden with it: the total would tell the 3
    for hidden in (waves["976"], waves["972"]):
        assert hidden.first_submission is None
        assert hidden.last_submission is None
    assert waves["metro"].recipients == 500
    assert waves["metro"].first_submission == at
