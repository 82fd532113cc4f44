"""A real HTTP receiver on 127.0.0.1 for webhook tests, and webhook URLs kept on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kit import clock
from kit.settings import Settings
from tests.conftest import ScanningClient, auth
from webhooks import flows
from webhooks.models import DeliveryStatus


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    url: str
    status: int = 200
    received: list[Received] = field(default_factory=list)


@pytest.fixture(autouse=True)
def loopback_only(settings: Callable[..., Settings]) -> None:
    """In tests, webhooks go nowhere but this machine."""
    settings(webhook_urls="loopback")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An endpoint that records what it is sent and answers `receiver.status`."""
    box = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            box.received.append(Received(dict(self.headers.items()), self.rfile.read(length)))
            self.send_response(box.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test reads `received`

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


ALL_EVENTS = [
    "order.status_changed",
    "order.on_hold",
    "order.sending_started",
    "order.sending_finished",
    "report.final",
    "invoice.issued",
    "invoice.overdue",
]


def register(
    client: ScanningClient, key: str, url: str, events: list[str] | None = None, **params: Any
) -> dict[str, Any]:
    r = client.post(
        "/v1/webhooks",
        json={"url": url, "events": events or ALL_EVENTS, "description": "ERP"},
        headers=auth(key),
        params=params,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def deliveries(client: ScanningClient, key: str, hook_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=auth(key))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def deliver(at: datetime | None = None) -> dict[DeliveryStatus, int]:
    """One run of the workers' sweep, at `at` (the service's clock otherwise)."""
    return flows.deliver_due(at or clock.now())


def later(days: float) -> datetime:
    return clock.now() + timedelta(days=days)
