"""Small helpers that create quotes and orders through the public API, and messages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kit import clock
from kit.settings import get_settings
from sales.messages.service import GSM_SINGLE, STOP_TOKEN_LENGTH, compose
from tests.conftest import ScanningClient, auth

# A base longer than the default, as production configures one.
LONG_STOP_LINK_BASE = "https://optout.example-broker.fr/s/"


def overseas_at_the_limit() -> tuple[str, str]:
    """A message whose overseas form, as dispatch composes it with the configured STOP link,
    is one character over a single SMS; and that composed form."""
    base = get_settings().messages.stop_link_base
    link = f"{base}{'k' * STOP_TOKEN_LENGTH}"  # as dispatch builds it
    mentions_length = len(compose("a", "F", metropolitan=False, stop_link=link)) - 1
    text = "a" * (GSM_SINGLE + 1 - mentions_length)
    return text, compose(text, "F", metropolitan=False, stop_link=link)


BROAD = {"sex": ["F"], "age": {"min": 25, "max": 60}}


def send_at(days: float = 3) -> str:
    at = clock.now().astimezone(clock.PARIS) + timedelta(days=days)
    return at.replace(hour=10, minute=0, second=0, microsecond=0).isoformat()


def create_quote(client: ScanningClient, key: str, criteria: Any = None) -> dict[str, Any]:
    r = client.post("/v1/quotes", json=criteria or BROAD, headers=auth(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


def order_body(quote: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "quote_id": quote["id"],
        "quantity": min(quote["shown_count"], 500),
        "message": "Soldes d'hiver : -20% sur tout le magasin avec le code HIVER",
        "sender": "ACME",
        "send_at": send_at(),
    }
    body.update(overrides)
    return body


def create_order(
    client: ScanningClient, key: str, quote: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    quote = quote or create_quote(client, key)
    r = client.post("/v1/orders", json=order_body(quote, **overrides), headers=auth(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


def invoices_of(client: ScanningClient, key: str, order_id: str) -> list[dict[str, Any]]:
    r = client.get("/v1/invoices", params={"order_id": order_id}, headers=auth(key))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def deposit_of(client: ScanningClient, key: str, order_id: str) -> dict[str, Any]:
    return next(i for i in invoices_of(client, key, order_id) if i["kind"] == "deposit")


def pay_deposit(
    client: ScanningClient,
    client_key: str,
    am_key: str,
    order_id: str,
    reference: str | None = None,
) -> Any:
    deposit = deposit_of(client, client_key, order_id)
    return client.post(
        f"/v1/orders/{order_id}/payments",
        json={
            "reference": reference or f"PAY-{order_id}",
            "amount_cents": deposit["amount_incl_vat_cents"],
        },
        headers=auth(am_key),
    )


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)
