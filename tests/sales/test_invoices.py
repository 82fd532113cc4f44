"""Invoices to the cent: deposit + balance = total, credit notes, gapless numbers, penalties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from kit.db import unit_of_work
from kit.money import vat_cents
from sales.accounts.service import operator
from sales.invoices import service as invoices
from sales.invoices.models import Invoice, InvoiceKind, InvoiceStatus, Payment
from sales.orders import access, lifecycle, payments
from sales.orders.schemas import OrderCreate
from sales.pricing.schemas import Price
from tests.conftest import ScanningClient, auth
from tests.factories import (
    create_order,
    create_quote,
    deposit_of,
    invoices_of,
    order_body,
    pay_deposit,
)


def settle(order_id: str, sent: int) -> Price:
    """What the dispatch does once an order is sent; returns the price of the volume sent."""
    with unit_of_work() as session:
        order = access.get_order(session, operator(session), order_id)
        payments.invoice_balance(session, order, sent, datetime.now(UTC))
        return payments.reprice(session, order, sent)


def test_deposit_and_balance_add_up_to_the_total_sent(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=333)  # odd amounts: rounding shows
    pay_deposit(app_client, acme, am, order["id"])
    sent = settle(order["id"], 317)  # 5% fewer sent than ordered
    # 317 contacts at 0.090 + 317 segments at 0.045 (Acme's segment is mostly metropolitan)
    assert sent.rental_cents == 2_853
    deposit = deposit_of(app_client, acme, order["id"])
    got = {i["kind"]: i for i in invoices_of(app_client, acme, order["id"])}["balance"]
    assert got["status"] == "unpaid"
    assert (
        deposit["amount_excl_vat_cents"] + got["amount_excl_vat_cents"] == sent.total_excl_vat_cents
    )
    # Each document's VAT is 20% of its own base; together they are within a cent of the VAT
    # on the total sent.
    for invoice in (deposit, got):
        assert invoice["vat_cents"] == vat_cents(invoice["amount_excl_vat_cents"], Decimal("0.20"))
    assert abs(deposit["vat_cents"] + got["vat_cents"] - sent.vat_cents) <= 1
    assert got["lines"][-1]["label"] == f"Less deposit invoice {deposit['number']}"
    seen = app_client.get(f"/v1/orders/{order['id']}", headers=auth(acme)).json()
    assert seen["events"][-1]["action"] == "balance_invoiced"
    assert seen["events"][-1]["details"]["invoice"] == got["number"]


def test_a_credit_note_when_the_deposit_exceeds_what_was_sent(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme, am = org_keys["acme"], org_keys["am"]
    order = create_order(app_client, acme, quantity=1000)
    pay_deposit(app_client, acme, am, order["id"])
    sent = settle(order["id"], 250)  # far below the deposit's 30%
    deposit = deposit_of(app_client, acme, order["id"])
    note = {i["kind"]: i for i in invoices_of(app_client, acme, order["id"])}["credit_note"]
    assert note["status"] == "refund_due"
    assert note["corrects"] == deposit["number"]
    assert (
        deposit["amount_excl_vat_cents"] - note["amount_excl_vat_cents"]
        == sent.total_excl_vat_cents
    )
    assert note["vat_cents"] == vat_cents(note["amount_excl_vat_cents"], Decimal("0.20"))
    assert abs(deposit["vat_cents"] - note["vat_cents"] - sent.vat_cents) <= 1


def order_then_fail(quote: dict) -> None:  # type: ignore[type-arg]
    with unit_of_work() as session:
        who = operator(session, "Acme")
        lifecycle.create_order(session, who, OrderCreate.model_validate(order_body(quote)))
        raise RuntimeError("the request fails after the invoice was numbered")


def test_numbers_have_no_gaps_even_when_a_transaction_rolls_back(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme = org_keys["acme"]
    quote = create_quote(app_client, acme)
    with pytest.raises(RuntimeError, match="after the invoice was numbered"):
        order_then_fail(quote)
    create_order(app_client, acme, quote)
    everything = app_client.get("/v1/invoices?limit=500", headers=auth(org_keys["am"])).json()
    year = datetime.now(UTC).year
    numbers = sorted(
        int(i["number"].split("-")[1])
        for i in everything["items"]
        if i["number"].startswith(f"{year}-")
    )
    assert numbers == list(range(1, len(numbers) + 1))


def test_an_overdue_invoice_shows_its_penalties(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    acme = org_keys["acme"]
    order = create_order(app_client, acme, quantity=200)
    deposit = deposit_of(app_client, acme, order["id"])
    assert deposit["penalty"] is None
    due = datetime.now(UTC).date() - timedelta(days=30)
    with unit_of_work() as session:
        session.execute(update(Invoice).where(Invoice.id == deposit["id"]).values(due_date=due))
    late = app_client.get(f"/v1/invoices/{deposit['id']}", headers=auth(acme)).json()
    penalty = late["penalty"]
    assert penalty["days_late"] in (29, 30, 31)  # Paris date vs UTC date around midnight
    assert penalty["recovery_indemnity_cents"] == 4_000
    assert Decimal(penalty["annual_rate_percent"]) >= 10


def test_penalties_run_on_each_part_until_it_is_paid() -> None:
    inv = Invoice(
        kind=InvoiceKind.deposit,
        amount_incl_vat_cents=100_000,
        paid_cents=100_000,
        due_date=date(2026, 1, 31),
        status=InvoiceStatus.paid,
        paid_on=date(2026, 2, 10),
    )
    late = [Payment(amount_cents=100_000, received_on=date(2026, 2, 10))]
    p = invoices.penalty(inv, late, date(2026, 6, 1))
    assert p is not None
    assert p.days_late == 10
    assert p.interest_cents == 333  # 1000 EUR x 12.15% x 10/365 = 3.329 EUR
    assert p.total_cents == 4_333
    on_time = [Payment(amount_cents=100_000, received_on=date(2026, 1, 31))]
    assert invoices.penalty(inv, on_time, date(2026, 6, 1)) is None
    # Half paid on time, half still due 30 days later: interest on the half only, and the
    # indemnity in full (it is due per invoice, whatever was paid).
    inv.status, inv.paid_cents, inv.paid_on = InvoiceStatus.partially_paid, 50_000, None
    half = [Payment(amount_cents=50_000, received_on=date(2026, 1, 20))]
    p = invoices.penalty(inv, half, date(2026, 3, 2))
    assert p is not None
    assert p.days_late == 30
    assert p.interest_cents == 499  # 500 EUR x 12.15% x 30/365 = 4.993 EUR
    assert p.recovery_indemnity_cents == 4_000
    inv.kind = InvoiceKind.credit_note
    assert invoices.penalty(inv, half, date(2026, 6, 1)) is None
