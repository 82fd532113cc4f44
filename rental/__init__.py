"""The rental service: accounts and roles, quotes, pricing, orders, invoices; HTTP API and CLI."""
