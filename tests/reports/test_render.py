"""Every template is rendered; the documents carry what their readers need; the HTML report is
looked at in a real browser (headless Chromium), which must find the charts drawn."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pypdf import PdfReader

from kit.db import unit_of_work
from kit.settings import get_settings
from reports import render, service
from sales.invoices.models import Invoice
from sales.invoices.repository import InvoiceRepository
from tests.conftest import ScanningClient, auth
from tests.factories import SentOrder, create_order, deposit_of, pay_deposit

PROBE = """<script>
window.addEventListener('load', () => {
  const charts = [...document.querySelectorAll('svg.chart')].map(svg => {
    const box = svg.getBoundingClientRect();
    return {cls: svg.getAttribute('class'), width: box.width, height: box.height,
            bars: [...svg.querySelectorAll('rect.bar')].filter(r => r.getBBox().width > 0
                   && r.getBBox().height > 0).length,
            texts: svg.querySelectorAll('text').length};
  });
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(charts);
  document.body.appendChild(out);
});
</script>"""


def pdf_text(content: bytes) -> str:
    return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(content)).pages)


def _invoice_documents(app_client: ScanningClient, org_keys: dict[str, str]) -> list[Invoice]:
    """A deposit and balance (the sent order), and a credit note (a paid order cancelled with
    its deposit refunded)."""
    order = create_order(app_client, org_keys["acme"])
    assert pay_deposit(app_client, org_keys["acme"], org_keys["am"], order["id"]).status_code == 201
    r = app_client.post(
        f"/v1/orders/{order['id']}/cancel",
        json={"refund_deposit": True},
        headers=auth(org_keys["am"]),
    )
    assert r.status_code == 200, r.text
    with unit_of_work() as session:
        return InvoiceRepository(session).of_order(order["id"])


def test_every_template_is_rendered(
    app_client: ScanningClient, org_keys: dict[str, str], sent_order: SentOrder
) -> None:
    env = render.environment()
    pages = [t for t in env.list_templates() if not Path(t).name.startswith("_")]
    partials = [t for t in env.list_templates() if Path(t).name.startswith("_")]
    assert sorted(pages) == sorted(render.TEMPLATES)
    with unit_of_work() as session:
        report = service.report_of(session, sent_order.id, sent_order.last_submission)
    html = render.report_html(report)
    assert html.count('<svg class="chart') == 2
    invoices = _invoice_documents(app_client, org_keys)
    assert {i.kind for i in invoices} == {"deposit", "credit_note"}
    from reports.invoices import document

    with unit_of_work() as session:
        docs = [render.invoice_html(document(session, session.merge(i))) for i in invoices]
    rendered = [html, *docs]
    for partial in partials:  # partials are rendered through the pages that use them
        sources = [env.loader.get_source(env, p)[0] for p in pages]  # type: ignore[union-attr]
        assert any(partial in s for s in sources), partial
    assert all("{{" not in d and "{%" not in d for d in rendered)


def test_invoice_pdfs_carry_the_legal_mentions(
    app_client: ScanningClient, org_keys: dict[str, str], sent_order: SentOrder
) -> None:
    s = get_settings()
    orgs = app_client.get("/v1/organisations", headers=auth(org_keys["am"])).json()
    acme = next(o for o in orgs if o["name"] == "Acme")
    r = app_client.patch(
        f"/v1/organisations/{acme['id']}",
        json={"billing_address": "3 place du Commerce, 35000 Rennes", "vat_number": "FR99123"},
        headers=auth(org_keys["am"]),
    )
    assert r.status_code == 200, r.text
    invoices = app_client.get(
        "/v1/invoices", params={"order_id": sent_order.id}, headers=auth(org_keys["acme"])
    ).json()["items"]
    balance = next(i for i in invoices if i["kind"] == "balance")
    r = app_client.get(
        f"/v1/invoices/{balance['id']}", params={"format": "pdf"}, headers=auth(org_keys["acme"])
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    text = " ".join(pdf_text(r.content).split())
    for mention in (
        f"n° {balance['number']}",  # the sequential number
        s.seller.name,
        s.seller.vat_number,
        f"SIREN {s.seller.siren}",
        "3 place du Commerce, 35000 Rennes",
        "FR99123",
        "Date d'émission",
        "Date de la prestation",
        "Échéance",
        "Total HT",
        "Total TTC",
        "TVA / VAT 20 %",
        "BCE majoré de 10 points",
        "indemnité forfaitaire pour frais de recouvrement de 40,00",
        "Pas d'escompte",
        render.money(balance["amount_incl_vat_cents"])
        .replace("\u00a0", " ")
        .replace("\u202f", " "),
    ):
        assert mention.replace("\u202f", " ") in text.replace("\u202f", " "), mention
    # A credit note names the invoice it corrects; unknown formats are refused.
    bad = app_client.get(
        f"/v1/invoices/{balance['id']}", params={"format": "docx"}, headers=auth(org_keys["acme"])
    )
    assert bad.status_code == 422
    assert bad.json()["formats"] == ["json", "html", "pdf"]
    other = app_client.get(
        f"/v1/invoices/{balance['id']}", params={"format": "pdf"}, headers=auth(org_keys["globex"])
    )
    assert other.status_code == 404


def test_a_credit_note_names_the_invoice_it_corrects(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    invoices = _invoice_documents(app_client, org_keys)
    deposit = next(i for i in invoices if i.kind == "deposit")
    note = next(i for i in invoices if i.kind == "credit_note")
    r = app_client.get(
        f"/v1/invoices/{note.id}", params={"format": "pdf"}, headers=auth(org_keys["acme"])
    )
    text = " ".join(pdf_text(r.content).split())
    assert f"Avoir / Credit note n° {note.number}" in text
    assert f"Rectifie la facture / Corrects invoice n° {deposit.number}" in text


def test_a_deposit_invoice_reads_facture_d_acompte_in_its_footer_not_an_escape(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    order = create_order(app_client, org_keys["acme"])
    deposit = deposit_of(app_client, org_keys["acme"], order["id"])
    footer = f"{get_settings().seller.name} - Facture d'acompte {deposit['number']} - page 1 / 1"
    r = app_client.get(
        f"/v1/invoices/{deposit['id']}", params={"format": "pdf"}, headers=auth(org_keys["acme"])
    )
    assert r.status_code == 200
    text = " ".join(pdf_text(r.content).split())
    assert footer in text, text[-300:]
    assert "&#" not in text  # &#39; and the like
    assert "&amp;" not in text
    # The HTML escapes each value once: a browser reads the title as typed, and the footer's
    # CSS string (raw text: entities are not decoded there) holds no HTML entity.
    r = app_client.get(
        f"/v1/invoices/{deposit['id']}", params={"format": "html"}, headers=auth(org_keys["acme"])
    )
    page = HtmlText()
    page.feed(r.text)
    assert f"Facture d'acompte / Deposit invoice n° {deposit['number']}" in page.text
    assert "&" not in page.text
    assert "&" not in page.style  # no &#39; nor &amp;: the base CSS itself has no "&"
    assert f"Facture d'acompte {deposit['number']}" in page.style


def test_a_customer_name_with_quotes_and_markup_reads_as_typed_in_the_report_footer(
    sent_order: SentOrder,
) -> None:
    with unit_of_work() as session:
        report = service.report_of(session, sent_order.id, sent_order.last_submission)
    name = 'Dupont & "Fils" </style><p>x</p>'
    html = render.report_html(report.model_copy(update={"customer": name}))
    page = HtmlText()
    page.feed(html)
    assert "</style>" not in page.style  # the name stays inside the CSS string
    assert "<p>x</p>" not in html
    last = PdfReader(io.BytesIO(render.pdf(html))).pages[-1].extract_text() or ""
    assert f"for {name}" in " ".join(last.split())


class HtmlText(HTMLParser):
    """The text a browser shows (entities decoded), and the raw text of the style elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        else:
            self.text += data


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("headless Chromium is needed: apt-get install chromium (see .ci/run)")
    return found


def test_the_html_report_shows_its_charts_in_chromium(
    sent_order: SentOrder, tmp_path: Path
) -> None:
    with unit_of_work() as session:
        report = service.report_of(
            session, sent_order.id, sent_order.last_submission + timedelta(hours=1)
        )
    html = render.report_html(report)
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"))
    run = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",  # tests run as root in CI containers
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, re.S)
    assert match, f"the probe did not run: {run.stderr[-2000:]}"
    charts = json.loads(match.group(1).replace("&quot;", '"'))
    assert [c["cls"] for c in charts] == ["chart funnel", "chart timeline"]
    for c in charts:
        assert c["width"] > 300
        assert c["height"] > 100
        assert c["bars"] >= 3  # drawn bars with a size, not just an empty frame
        assert c["texts"] >= 5  # values and labels written out
