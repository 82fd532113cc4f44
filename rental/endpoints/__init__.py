"""Endpoints that need several domains: an order with its waves (sales and dispatch), an invoice
with its documents (sales and reports)."""
