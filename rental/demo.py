"""`rental demo`: a complete rental against a running service, through its public HTTP API
only, as a customer and an account manager would do it: criteria, quote, order, deposit,
confirmation, the send in the next legal window, receipts, the report in every format and the
balance invoice, written under RENTAL_HOME/reports/."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from kit.clock import human

CRITERIA: dict[str, Any] = {
    "sex": ["F"],
    "age": {"min": 25, "max": 60},
    "regions": ["11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94"],
}
MESSAGE = "Soldes d'hiver chez DemoShop : -20% sur tout le magasin avec le code HIVER"
SENDER = "DemoShop"
FORMATS = ("json", "csv", "html", "pdf")


class DemoFailed(Exception):
    """The demo could not go on; the message says why and what to do."""


def _euros(cents: int) -> str:
    return f"{cents / 100:,.2f} EUR".replace(",", " ")


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/v1",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise DemoFailed(
                f"no service answers at {self.http.base_url}: start it first (make run)"
            ) from exc
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise DemoFailed(f"{method} {path} -> {r.status_code}: {detail}")
        return r

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()


def run(
    url: str,
    client_key: str,
    manager_key: str,
    out_dir: Path,
    quantity: int,
    say: Callable[[str], None],
    timeout_seconds: float = 900,
) -> dict[str, Path]:
    client, manager = Api(url, client_key), Api(url, manager_key)
    now = datetime.fromisoformat(client.json("GET", "/health")["now"])
    say(f"Service at {url}, its clock says {human(now)}.")
    quote = _quote(client, say)
    oid = _order(client, quote, quantity, now + timedelta(seconds=30), say)
    _pay_deposit(client, manager, oid, say)

    say("5. Sending: the scheduler starts it in the next legal window of each recipient")
    status, shown = _follow(client, oid, say, timeout_seconds)
    if status not in ("sent", "reported", "closed"):
        raise DemoFailed(f"the order is {status}: {shown}")

    say("6. Receipts come back from the carrier; the report fills in")
    _settle(client, oid, say, timeout=120)
    return _documents(client, oid, out_dir, say)


def _quote(client: Api, say: Callable[[str], None]) -> dict[str, Any]:
    quote: dict[str, Any] = client.json("POST", "/quotes", json=CRITERIA)
    if not quote["orderable"]:
        raise DemoFailed("the demo segment is below the minimum size: generate a larger base")
    price = quote.get("price") or {}
    shown = f"{quote['shown_count']:,}".replace(",", " ")
    line = (
        f"1. Quote {quote['id']}: women aged 25-60 in metropolitan France, about {shown} prospects"
    )
    if price:
        line += f" (price for them all: {_euros(price['total_incl_vat_cents'])})"
    say(line)
    return quote


def _order(
    client: Api,
    quote: dict[str, Any],
    quantity: int,
    send_at: datetime,
    say: Callable[[str], None],
) -> str:
    order = client.json(
        "POST",
        "/orders",
        json={
            "quote_id": quote["id"],
            "quantity": min(quantity, quote["shown_count"]),
            "message": MESSAGE,
            "sender": SENDER,
            "send_at": send_at.isoformat(),
        },
    )
    say(
        f"2. Order {order['id']}: {order['quantity']} messages from {SENDER}, "
        f"{order['segments']} SMS each, {_euros(order['total']['amount_incl_vat_cents'])} "
        f"incl. VAT; requested for {human(send_at)}"
    )
    return str(order["id"])


def _pay_deposit(client: Api, manager: Api, oid: str, say: Callable[[str], None]) -> None:
    invoices = client.json("GET", "/invoices", params={"order_id": oid})["items"]
    deposit = next(i for i in invoices if i["kind"] == "deposit")
    say(f"3. Deposit invoice {deposit['number']}: {_euros(deposit['amount_incl_vat_cents'])}")
    manager.json(
        "POST",
        f"/orders/{oid}/payments",
        json={"reference": f"DEMO-{oid[:8]}", "amount_cents": deposit["amount_incl_vat_cents"]},
    )
    say("4. The account manager records the deposit: the order is confirmed")


def _documents(client: Api, oid: str, out_dir: Path, say: Callable[[str], None]) -> dict[str, Path]:
    """The report in every format and every invoice as PDF, written under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in FORMATS:
        r = client.call("GET", f"/orders/{oid}/report", params={"format": fmt})
        path = out_dir / f"report-{oid}.{fmt}"
        path.write_bytes(r.content)
        written[f"report.{fmt}"] = path
    invoices = client.json("GET", "/invoices", params={"order_id": oid})["items"]
    for inv in invoices:
        r = client.call("GET", f"/invoices/{inv['id']}", params={"format": "pdf"})
        path = out_dir / f"{inv['kind']}-{inv['number']}.pdf"
        path.write_bytes(r.content)
        written[f"{inv['kind']} {inv['number']}"] = path
    final = next((i for i in invoices if i["kind"] in ("balance", "credit_note")), None)
    if final is not None:
        say(
            f"7. {final['kind'].replace('_', ' ').capitalize()} {final['number']}: "
            f"{_euros(final['amount_incl_vat_cents'])} - {final['description']}"
        )
    say(f"8. Written under {out_dir}:")
    for name, path in written.items():
        say(f"   {name:<24} {path.name}")
    return written


def _follow(client: Api, oid: str, say: Callable[[str], None], timeout: float) -> tuple[str, str]:
    """Poll the order until it is sent (or stuck), printing its progress."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        order = client.json("GET", f"/orders/{oid}")
        status = order["status"]
        waves = order.get("waves") or []
        parts = []
        for w in waves:
            n = w.get("recipients")
            count = "(hidden)" if n is None else str(n)
            parts.append(f"{w.get('calendar')}: {count} {w.get('status', '')}".strip())
        line = f"   {status}" + (f" - waves {', '.join(parts)}" if parts else "")
        if line != last:
            say(line)
            last = line
        if status in ("sent", "reported", "closed"):
            return status, line
        if status in ("on_hold", "cancelled", "rejected"):
            return status, str(order.get("hold_reason") or status)
        time.sleep(2)
    raise DemoFailed(f"the order was not sent within {timeout:.0f} s (still {last.strip()})")


def _settle(client: Api, oid: str, say: Callable[[str], None], timeout: float) -> None:
    """Follow the report until no message waits for its receipt (late receipts keep updating
    it until its receipt window closes). Counts under the minimum are hidden (null)."""
    deadline = time.monotonic() + timeout
    last, since = "", time.monotonic()
    while time.monotonic() < deadline:
        volumes = client.json("GET", f"/orders/{oid}/report")["volumes"]
        line = "   " + ", ".join(
            f"{name.replace('_', ' ')} {'hidden' if volumes[name] is None else volumes[name]}"
            for name in ("submitted", "delivered", "failed", "expired", "awaiting_receipt")
        )
        if line != last:
            say(line)
            last, since = line, time.monotonic()
        if volumes["awaiting_receipt"] == 0 or time.monotonic() - since > 15:
            return  # all in, or nothing has moved for a while
        time.sleep(2)
