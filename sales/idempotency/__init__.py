"""Idempotency-Key on the POSTs that create something: a retried request gets the first answer."""
