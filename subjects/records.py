"""The broker's records of processing (GDPR art. 30): every rental of a period, with no
personal data: the customer, what it targeted, how many it ordered and how many were sent,
when, under which sender name."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.orm import Session

from subjects import repository


class RentalLine(BaseModel):
    order_id: str
    customer: str
    criteria: dict[str, object]
    ordered: int
    sent: int  # messages handed to a carrier (the contact history)
    sender: str
    status: str
    ordered_at: datetime
    send_at: datetime


def rentals(session: Session, start: datetime, end: datetime) -> list[RentalLine]:
    """The rentals whose send time falls in [start, end), oldest first."""
    rows = repository.rentals(session, start, end)
    sent = repository.sent_counts(session, [str(r[0]) for r in rows])
    return [
        RentalLine(
            order_id=str(oid),
            customer=str(customer),
            criteria=dict(criteria or {}),
            ordered=int(quantity),
            sent=sent.get(str(oid), 0),
            sender=str(sender),
            status=str(status),
            ordered_at=created,
            send_at=send_at,
        )
        for oid, customer, criteria, quantity, _reserved, sender, status, created, send_at in rows
    ]


def as_csv(lines: list[RentalLine]) -> str:
    """One line per rental; the criteria as their canonical JSON."""
    out = io.StringIO()
    names = list(RentalLine.model_fields)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for line in lines:
        row = line.model_dump(mode="json")
        row["criteria"] = json.dumps(row["criteria"], sort_keys=True, separators=(",", ":"))
        writer.writerow([row[n] for n in names])
    return out.getvalue()
