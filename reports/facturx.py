"""Invoices and credit notes as Factur-X e-invoices: the PDF (PDF/A-3) carries the same invoice
as CII XML (`factur-x.xml`, profile EN 16931), for the customer's accounting to read.

The XML is made from the document the PDF prints (reports.invoices.document): no amount is
computed twice. It states the invoice as issued: payments received later are not part of it
(an issued invoice is never changed; a credit note corrects it). Deposit invoices are typed
386 (prepayment invoice), balance invoices 380, credit notes 381 with the invoice they correct.
No contact of the customer and nothing of the recipients is written: parties are named by
their legal identity only.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import facturx
from lxml import etree, objectify

from kit.clock import PARIS

LEVEL = "en16931"
GUIDELINE = "urn:cen.eu:en16931:2017"  # BT-24 of the EN 16931 profile
FILENAME = "factur-x.xml"
TYPE_CODES = {"deposit": "386", "balance": "380", "credit_note": "381"}
UNIT = "C62"  # "one" (UN/ECE rec. 20): each line is billed once, for its amount
SIREN_SCHEME = "0002"  # ISO 6523 code of the French SIREN register
SEPA_CREDIT_TRANSFER = "58"
# The broker bills French businesses: a buyer whose country cannot be told (no VAT number
# with its country prefix) is in France. EN 16931 requires a country on every address.
DEFAULT_COUNTRY = "FR"


def _eur(cents: int) -> str:
    """Cents as a CII amount: 1234 -> '12.34', -5 -> '-0.05'."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def _day(value: datetime | date) -> date:
    return value.astimezone(PARIS).date() if isinstance(value, datetime) else value


def _country(vat_number: str | None) -> str:
    prefix = (vat_number or "")[:2]
    return prefix.upper() if prefix.isalpha() else DEFAULT_COUNTRY


def _address(text: str | None, country: str) -> dict[str, Any]:
    """A one-line postal address ('1 rue X, 75002 Paris, France') as CII fields: the part with a
    postcode gives the postcode and city, the parts before it the street lines."""
    out: dict[str, Any] = {"country_code": country}
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    city_at = next((i for i, p in enumerate(parts) if re.fullmatch(r"\d{4,5} .+", p)), None)
    if city_at is not None:
        out["postcode"], out["city"] = parts[city_at].split(" ", 1)
        parts = parts[:city_at]
    elif parts and parts[-1].casefold() == "france":
        parts = parts[:-1]
    if parts:
        out["addr_l1"] = parts[0]
    if len(parts) > 1:
        out["addr_l2"] = ", ".join(parts[1:])
    return out


def _party(name: str, vat_number: str | None, siren: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if vat_number:
        out["vat_identifier"] = vat_number
    digits = re.sub(r"\s", "", siren or "")
    if digits:
        out["legal_identifier"], out["legal_identifier_schemeid"] = digits, SIREN_SCHEME
    return out


def _seller(seller: dict[str, Any]) -> dict[str, Any]:
    """BG-4, with the legal form and registry the French mentions require (BT-33)."""
    return (
        _party(seller["name"], seller["vat_number"], seller["siren"])
        | {"legal_info": f"{seller['legal_form']} - {seller['rcs']}"}
        | _address(seller["address"], _country(seller["vat_number"]))
    )


def _buyer(customer: dict[str, Any]) -> dict[str, Any]:
    """BG-7: the organisation's billing identity (no contact: no phone, no e-mail)."""
    return _party(customer["name"], customer["vat_number"], customer["siren"]) | _address(
        customer["address"], _country(customer["vat_number"])
    )


def billed_lines(invoice: Any) -> list[tuple[str, int]]:
    """The lines of the XML, (label, cents excluding VAT), adding up to the invoice's amount
    excluding VAT (EN 16931 BR-CO-10).

    The printed lines also show subtotals and, on a deposit or a credit note for a short
    sending, the order they are computed from: those are not billed. A subtotal is a line equal
    to the sum of the lines above it; when the printed lines, less at most one subtotal, do not
    add up to the amount, the invoice is one line: its description, for its amount.
    """
    lines = [(str(line["label"]), int(line["amount_excl_vat_cents"])) for line in invoice.lines]
    total = invoice.amount_excl_vat_cents
    if lines and sum(c for _, c in lines) == total:
        return lines
    for k in range(len(lines) - 1, 0, -1):
        above = sum(c for _, c in lines[:k])
        if lines[k][1] == above and sum(c for _, c in lines) - above == total:
            return lines[:k] + lines[k + 1 :]
    return [(invoice.description, total)]


def _lines(invoice: Any, rate: str) -> list[dict[str, Any]]:
    """BG-25: each billed line once, at its amount; a deduction (the deposit, on a balance)
    is a quantity of -1 at a positive price (EN 16931 forbids negative prices, BR-27)."""
    return [
        {
            "BT-126": str(i),
            "BT-153": label,
            "BT-129": "-1" if cents < 0 else "1",
            "BT-130": UNIT,
            "BT-146": _eur(abs(cents)),
            "BT-131": _eur(cents),
            "BT-151": "S",
            "BT-152": rate,
        }
        for i, (label, cents) in enumerate(billed_lines(invoice), start=1)
    ]


def _terms(doc: dict[str, Any]) -> dict[str, Any]:
    """Payment terms (BT-20, BT-9), the bank account (BG-16) and the legal notes (BG-1)."""
    if doc["is_credit_note"]:
        return {"BT-20": "Montant dû au client : remboursement ou imputation."}
    days = doc["payment_terms_days"]
    out: dict[str, Any] = {
        "BT-9": _day(doc["invoice"].due_date),
        "BT-20": ("À réception" if days == 0 else f"À {days} jours") + ", par virement.",
        "BG-1": [
            {"BT-21": "AAB", "BT-22": "Pas d'escompte pour paiement anticipé."},
            {
                "BT-21": "PMD",
                "BT-22": "En cas de retard de paiement, pénalités au taux de refinancement de "
                f"la BCE majoré de {doc['penalty_points']} points (art. L441-10 du Code de "
                "commerce).",
            },
            {
                "BT-21": "PMT",
                "BT-22": "Indemnité forfaitaire pour frais de recouvrement : "
                f"{_eur(doc['recovery_indemnity_cents'])} EUR (art. D441-5 du Code de "
                "commerce).",
            },
        ],
    }
    iban = re.search(r"IBAN\s*([A-Z]{2}[0-9A-Z ]+?)\s*(?:-|BIC|$)", doc["seller"]["bank_details"])
    if iban:
        out["BT-81"], out["BT-84"] = SEPA_CREDIT_TRANSFER, iban.group(1).replace(" ", "")
    return out


def data(doc: dict[str, Any]) -> dict[str, Any]:
    """The invoice as factur-x's data dict (keys are EN 16931 business terms, BT-n/BG-n)."""
    inv = doc["invoice"]
    rate = f"{Decimal(inv.vat_rate) * 100:.2f}"
    out: dict[str, Any] = {
        "BT-1": inv.number,
        "BT-2": _day(inv.issued_at),
        "BT-3": TYPE_CODES[inv.kind],
        "BT-5": inv.currency,
        "BT-14": inv.order_id,
        "BT-24": GUIDELINE,
        "BG-25": _lines(inv, rate),
        "BG-23": [
            {
                "BT-116": _eur(inv.amount_excl_vat_cents),
                "BT-117": _eur(inv.vat_cents),
                "BT-118": "S",
                "BT-119": rate,
            }
        ],
        "BT-106": _eur(inv.amount_excl_vat_cents),
        "BT-109": _eur(inv.amount_excl_vat_cents),
        "BT-110": _eur(inv.vat_cents),
        "BT-112": _eur(inv.amount_incl_vat_cents),
        "BT-115": _eur(inv.amount_incl_vat_cents),
    }
    if doc["service_date"]:
        out["BT-72"] = _day(doc["service_date"])
    if inv.corrects:
        ref: dict[str, Any] = {"BT-25": inv.corrects}
        if doc["corrects_issued_at"]:
            ref["BT-26"] = _day(doc["corrects_issued_at"])
        out["BG-3"] = [ref]
    out["BG-4"], out["BG-7"] = _seller(doc["seller"]), _buyer(doc["customer"])
    return out | _terms(doc)


def xml(doc: dict[str, Any]) -> bytes:
    """The CII XML of an invoice document, checked against the profile's XML schema."""
    made = facturx.generate_cii_xml(data(doc), level=LEVEL, check_xsd=False, check_schematron=False)
    root = etree.fromstring(made)
    # factur-x 7.8 marks an empty delivery block (no delivery date yet: a deposit, a credit
    # note) xsi:nil, which the schema refuses: the block stays, empty, as the schema wants it.
    objectify.deannotate(root, pytype=False, xsi=False, xsi_nil=True, cleanup_namespaces=True)
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    facturx.xml_check_xsd(out, flavor="factur-x", level=LEVEL)
    return bytes(out)


def embed(pdf: bytes, doc: dict[str, Any]) -> bytes:
    """The PDF/A-3 of an invoice with its XML attached as factur-x.xml, and the Factur-X XMP
    metadata that tells readers it is there."""
    inv = doc["invoice"]
    seller = doc["seller"]["name"]
    title = f"{doc['title_fr']} n° {inv.number}"
    return bytes(
        facturx.generate_from_binary(
            pdf,
            xml(doc),
            flavor="factur-x",
            level=LEVEL,
            check_xsd=False,  # xml() checked it
            pdf_metadata={
                "author": seller,
                "keywords": "Factur-X, facture",
                "title": f"{seller} : {title}",
                "subject": f"Factur-X {title} du {_day(inv.issued_at):%d/%m/%Y}, émise par "
                f"{seller}",
            },
            lang="fr-FR",
        )
    )
