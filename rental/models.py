"""Every table of the service database, so that Alembic and tests see the whole schema."""

from datasets.erasures import Erasure
from dispatch.models import (
    Batch,
    CarrierStatus,
    EarlyReceipt,
    HmacIndex,
    OutcomeTally,
    PeopleTally,
    Recipient,
)
from kit.locks import Counter
from sales.accounts.models import (
    ApiKey,
    AuditEvent,
    Organisation,
    SignInFailure,
    User,
    WebSession,
)
from sales.idempotency.models import IdempotencyKey
from sales.invoices.models import Invoice, Payment
from sales.orders.models import Order, OrderEvent
from sales.pricing.models import ContractGrid
from sales.quotes.models import Quote, QuoteFlag
from segmentation.models import (
    ContactEvent,
    ExclusionChunk,
    ExclusionFile,
    Reservation,
    Suppression,
)
from subjects.models import Challenge, RequestAction, SubjectRequest
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "ApiKey",
    "Batch",
    "CarrierStatus",
    "Challenge",
    "Erasure",
    "RequestAction",
    "SubjectRequest",
    "AuditEvent",
    "ContactEvent",
    "ContractGrid",
    "EarlyReceipt",
    "HmacIndex",
    "ExclusionChunk",
    "ExclusionFile",
    "Counter",
    "IdempotencyKey",
    "Invoice",
    "Order",
    "OutcomeTally",
    "PeopleTally",
    "OrderEvent",
    "Organisation",
    "Payment",
    "Quote",
    "QuoteFlag",
    "Recipient",
    "Reservation",
    "SignInFailure",
    "Suppression",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebSession",
]
