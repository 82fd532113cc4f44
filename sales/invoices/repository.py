from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from kit.text import is_id
from sales.invoices.models import OPEN, Invoice, Payment


class InvoiceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, invoice: Invoice) -> Invoice:
        self.session.add(invoice)
        self.session.flush()
        return invoice

    def get(self, invoice_id: str, organisation_id: int | None) -> Invoice | None:
        if not is_id(invoice_id):
            return None
        q = select(Invoice).where(Invoice.id == invoice_id)
        if organisation_id is not None:
            q = q.where(Invoice.organisation_id == organisation_id)
        return self.session.scalar(q)

    def of_order(self, order_id: str) -> list[Invoice]:
        q = select(Invoice).where(Invoice.order_id == order_id)
        return list(self.session.scalars(q.order_by(Invoice.year, Invoice.sequence)))

    def search(
        self,
        organisation_id: int | None,
        kind: str | None,
        status: str | None,
        order_id: str | None,
        limit: int,
        offset: int,
    ) -> list[Invoice]:
        """Newest first."""
        q = select(Invoice)
        if organisation_id is not None:
            q = q.where(Invoice.organisation_id == organisation_id)
        if kind is not None:
            q = q.where(Invoice.kind == kind)
        if status is not None:
            q = q.where(Invoice.status == status)
        if order_id is not None:
            q = q.where(Invoice.order_id == order_id)
        q = q.order_by(Invoice.year.desc(), Invoice.sequence.desc()).limit(limit).offset(offset)
        return list(self.session.scalars(q))

    def overdue(self, organisation_id: int | None, today: date, limit: int) -> list[Invoice]:
        """Invoices still awaiting payment after their due date, the longest overdue first."""
        q = select(Invoice).where(Invoice.status.in_(sorted(OPEN)), Invoice.due_date < today)
        if organisation_id is not None:
            q = q.where(Invoice.organisation_id == organisation_id)
        q = q.order_by(Invoice.due_date, Invoice.year, Invoice.sequence).limit(limit)
        return list(self.session.scalars(q))


class PaymentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_reference(self, reference: str) -> Payment | None:
        return self.session.scalar(select(Payment).where(Payment.reference == reference))

    def add(self, payment: Payment) -> Payment:
        self.session.add(payment)
        self.session.flush()
        return payment

    def of_invoice(self, invoice_id: str) -> list[Payment]:
        q = select(Payment).where(Payment.invoice_id == invoice_id).order_by(Payment.id)
        return list(self.session.scalars(q))
