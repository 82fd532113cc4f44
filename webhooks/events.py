"""The events an endpoint may subscribe to: the one list, in the API, the docs and the outbox."""

from __future__ import annotations

import enum


class EventType(enum.StrEnum):
    order_status_changed = "order.status_changed"
    order_on_hold = "order.on_hold"
    order_sending_started = "order.sending_started"
    order_sending_finished = "order.sending_finished"
    report_final = "report.final"
    invoice_issued = "invoice.issued"
    invoice_overdue = "invoice.overdue"


# Sent by `POST /v1/webhooks/{id}/test` only, to that endpoint, whatever it subscribed to.
TEST_EVENT = "webhook.test"

# The fields of an event's data that carry a count of people: none is ever under the minimum
# segment size (`service.emit` drops it, as the API's order view does for `offered_quantity`).
COUNT_FIELDS = ("quantity", "offered_quantity")
