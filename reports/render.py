"""Documents: the send report as CSV, HTML and PDF, invoices and credit notes as HTML and PDF.

An invoice's PDF is a Factur-X e-invoice: PDF/A-3 with the invoice as CII XML inside
(reports.facturx), made by `invoice_pdf` for whoever asks for it (the API, the web pages).

HTML comes from the Jinja2 templates under reports/templates (autoescaped, undefined variables
are errors); the PDF is the same HTML laid out by WeasyPrint. Charts are inline SVG drawn in
grey levels and patterns with their values written out, so that they read on paper too.
Nothing here reads the ledger: documents are made from the Report model (already suppressed)
or an invoice's view.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from kit.clock import PARIS
from kit.settings import get_settings
from reports.exceptions import PdfUnavailable
from reports.schemas import Report

HIDDEN = "hidden"


def count(value: int | None) -> str:
    """12 345, or 'hidden' for a suppressed count."""
    return HIDDEN if value is None else f"{value:,}".replace(",", "\u202f")


def money(cents: int | None) -> str:
    """1 234,56 EUR (French notation), or 'hidden'."""
    if cents is None:
        return HIDDEN
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}".replace(",", "\u202f") + f",{frac:02d}\u00a0EUR"


def when(value: datetime | date | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """A time in Paris time (dates as they are); '-' when there is none."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(PARIS).strftime(fmt)
    return value.strftime("%d/%m/%Y")


def percent(rate: Decimal | str) -> str:
    return f"{Decimal(str(rate)) * 100:.2f}".rstrip("0").rstrip(".") + "\u00a0%"


# Charts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    value: int | None
    y: float
    width: float  # 0 for a hidden value: its length would tell it
    shade: str


@dataclass(frozen=True)
class Funnel:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]


def funnel(report: Report) -> Funnel:
    """The delivery funnel: recipients, submitted, delivered, then where the others went."""
    v = report.volumes
    rows = [
        ("Recipients", v.recipients, "#333"),
        ("Submitted", v.submitted, "#555"),
        ("Delivered", v.delivered, "#222"),
        ("Failed", v.failed, "#999"),
        ("Expired", v.expired, "#999"),
        ("Awaiting receipt", v.awaiting_receipt, "#bbb"),
        ("Unknown (not resent)", v.unknown, "#bbb"),
        ("Opted out before sending", v.opted_out_before_sending, "#bbb"),
        ("Pending", v.pending, "#ddd"),
    ]
    top = max([n for _, n, _ in rows if n is not None] + [1])
    label_width, area, step, bar_height = 190, 330, 30, 20
    bars = [
        Bar(label, n, 10 + i * step, 0 if n is None else area * n / top, shade)
        for i, (label, n, shade) in enumerate(rows)
    ]
    return Funnel(label_width + area + 110, 10 + len(rows) * step, label_width, bar_height, bars)


@dataclass(frozen=True)
class Column:
    x: float
    submitted: int | None
    receipts: int | None
    h_submitted: float
    h_receipts: float


@dataclass(frozen=True)
class Tick:
    pos: float
    text: str


@dataclass(frozen=True)
class TimeChart:
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    bar_width: float
    columns: list[Column]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    bucket_minutes: int


def time_chart(report: Report) -> TimeChart:
    """Submissions and receipts per time bucket, side by side."""
    buckets = report.series.buckets
    left, top, plot_width, plot_height = 60, 12, 560, 170
    values = [n for b in buckets for n in (b.submitted, b.receipts) if n is not None]
    peak = max(values + [1])
    slot = plot_width / max(len(buckets), 1)
    bar = max(min(slot * 0.4, 40.0), 1.0)

    def height(n: int | None) -> float:
        return 0.0 if n is None else plot_height * n / peak

    columns = [
        Column(
            left + i * slot + slot / 2 - bar,
            b.submitted,
            b.receipts,
            height(b.submitted),
            height(b.receipts),
        )
        for i, b in enumerate(buckets)
    ]
    y_ticks = [
        Tick(top + plot_height - plot_height * f, count(round(peak * f))) for f in (0, 0.5, 1)
    ]
    every = max(1, len(buckets) // 6)
    fmt = "%d/%m %H:%M" if report.series.bucket_minutes < 1440 else "%d/%m"
    x_ticks = [
        Tick(left + i * slot + slot / 2, when(b.start, fmt))
        for i, b in enumerate(buckets)
        if i % every == 0
    ]
    return TimeChart(
        left + plot_width + 20,
        top + plot_height + 50,
        left,
        top,
        plot_width,
        plot_height,
        bar,
        columns,
        y_ticks,
        x_ticks,
        report.series.bucket_minutes,
    )


# Templates --------------------------------------------------------------------------------


def css_string(value: str) -> Markup:
    """Plain text as a quoted CSS string, for a `content:` inside a <style> element.

    Style is raw text: HTML entities are not decoded there, so autoescaping would print
    `d&#39;acompte` on the page. The text is escaped once, for CSS: quotes, backslashes, control
    characters and `<`, `>`, `&` become hex escapes, so no value ends the string or the element.
    """
    if hasattr(value, "__html__"):  # already escaped for HTML: escaping again would show it
        raise TypeError("css_string takes plain text, not markup")
    out = "".join(
        f"\\{ord(c):x} " if c in '"\\<>&' or ord(c) < 0x20 or ord(c) == 0x7F else c
        for c in str(value)
    )
    return Markup(f'"{out}"')  # noqa: S704  (every character that matters is escaped above)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(count=count, money=money, when=when, percent=percent, css_string=css_string)
    return env


TEMPLATES = ("report.html.j2", "invoice.html.j2")


def report_html(report: Report) -> str:
    return (
        environment()
        .get_template("report.html.j2")
        .render(r=report, funnel=funnel(report), chart=time_chart(report))
    )


def invoice_html(invoice: dict[str, Any]) -> str:
    """An invoice or credit note (see reports.invoices.document for the fields)."""
    return environment().get_template("invoice.html.j2").render(doc=invoice)


def invoice_pdf(invoice: dict[str, Any]) -> bytes:
    """An invoice or credit note as a Factur-X PDF: PDF/A-3b with its CII XML embedded (see
    reports.facturx)."""
    # Imported on first use: Factur-X brings pypdf and lxml (about 0.3 s of every API
    # process's start otherwise).
    from reports import facturx

    return facturx.embed(_layout(invoice_html(invoice), variant="pdf/a-3b"), invoice)


def pdf(html: str) -> bytes:
    """The HTML laid out on A4 pages by WeasyPrint."""
    return _layout(html)


def _layout(html: str, variant: str | None = None) -> bytes:
    """WeasyPrint's PDF of the HTML (imported here: it is slow to load)."""
    try:
        from weasyprint import HTML
    except OSError as exc:  # its system libraries are missing
        raise PdfUnavailable(
            "PDF rendering needs the pango libraries on this machine: install them with "
            "tools/system-packages.sh libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core (as "
            "root); the other formats work meanwhile"
        ) from exc

    with warnings.catch_warnings():
        # WeasyPrint 70 opens its sRGB profile for the PDF/A output intent and leaves the file
        # to the garbage collector (read at once, it is freed within this call).
        warnings.simplefilter("ignore", ResourceWarning)
        out = HTML(string=html, base_url=str(get_settings().home)).write_pdf(pdf_variant=variant)
    assert out is not None  # noqa: S101  (no target given: the bytes are returned)
    return bytes(out)


def _csv_value(value: Any) -> str:
    if value is None:
        return HIDDEN
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _csv_head(report: Report) -> list[list[str]]:
    head = {
        "order_id": report.order_id,
        "state": report.state,
        "final_at": report.final_at.isoformat() if report.final_at else "",
        "generated_at": report.generated_at.isoformat(),
        "order_status": report.order_status,
        "broker": report.broker,
        "customer": report.customer,
        "sender": report.sender,
        "minimum_count": str(report.minimum_count),
    }
    rows = [["order", item, value] for item, value in head.items()]
    return rows + [["criteria", "criterion", line] for line in report.criteria]


def _csv_timeline(report: Report) -> list[list[str]]:
    t, shown = report.timeline, _csv_value
    rows: list[list[str]] = []
    for item in ("requested_send_at", "dispatch_started_at", "first_submission", "last_submission",
                 "last_receipt"):  # fmt: skip
        rows.append(["timeline", item, shown(getattr(t, item))])
    for wave in t.waves:
        for item, value in wave.model_dump().items():
            if item != "calendar":
                rows.append([f"wave:{wave.calendar}", item, shown(value)])
    for d in t.deferrals:
        rows.append([f"deferral:{d.calendar}", "requested", d.requested.isoformat()])
        rows.append([f"deferral:{d.calendar}", "started", d.started.isoformat()])
        rows.append([f"deferral:{d.calendar}", "reason", d.reason])
    return rows


def report_csv(report: Report) -> str:
    """One line per figure: section, item, label, value ('hidden' when suppressed)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "item", "value"])
    w.writerows(_csv_head(report))
    shown = _csv_value
    for item, value in report.volumes.model_dump().items():
        if item == "failed_by_reason":
            for reason, n in value.items():
                w.writerow(["failed_by_reason", reason, shown(n)])
        else:
            w.writerow(["volumes", item, shown(value)])
    for section in ("opt_outs", "cost", "controls"):
        for item, value in getattr(report, section).model_dump().items():
            w.writerow([section, item, shown(value)])
    w.writerows(_csv_timeline(report))
    series = f"series_{report.series.bucket_minutes}min"
    for b in report.series.buckets:
        at = b.start.isoformat()
        w.writerow([series, f"{at} submitted", shown(b.submitted)])
        w.writerow([series, f"{at} receipts", shown(b.receipts)])
    for dim, cells in report.breakdowns.items():
        for c in cells:
            w.writerow([f"breakdown:{dim}", c.label, shown(c.recipients)])
    for note in report.notes:
        w.writerow(["notes", "note", note])
    return buf.getvalue()


def report_json(report: Report) -> str:
    return json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2)
