"""Imports every table so that Base.metadata is complete (Alembic, tests)."""

from rental.accounts.models import ApiKey, AuditEvent, Organisation, User
from rental.quotes.models import Quote
from segmentation.models import ContactEvent, Reservation, Suppression

__all__ = [
    "ApiKey",
    "AuditEvent",
    "ContactEvent",
    "Organisation",
    "Quote",
    "Reservation",
    "Suppression",
    "User",
]
