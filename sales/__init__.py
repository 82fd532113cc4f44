"""The sales domain: accounts and roles, quotes, pricing, orders, invoices, messages."""
