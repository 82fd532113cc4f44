from __future__ import annotations

from kit.errors import Conflict, InvalidInput, NotFound


class InvoiceNotFound(NotFound):
    code = "invoice_not_found"


class PaymentReferenceReused(Conflict):
    code = "payment_reference_reused"


class NothingToPay(Conflict):
    code = "nothing_to_pay"


class Overpayment(InvalidInput):
    code = "overpayment"
