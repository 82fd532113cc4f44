"""The addresses of the marketer's pages and documents."""

from __future__ import annotations

ORDERS = "/app/commandes"
INVOICES = "/app/factures"
QUOTES = "/app/devis"
EXCLUSIONS = "/app/repoussoirs"
# Documents (the API's renderings: an inline style sheet, no script) live under their own
# prefix, which web/security.py gives the API's document policy.
DOCUMENTS = "/app/documents"


def order_page(order_id: str) -> str:
    return f"{ORDERS}/{order_id}"


def report_file(order_id: str, fmt: str) -> str:
    return f"{DOCUMENTS}/commandes/{order_id}/rapport.{fmt}"


def invoice_file(invoice_id: str, fmt: str = "pdf") -> str:
    return f"{DOCUMENTS}/factures/{invoice_id}.{fmt}"
