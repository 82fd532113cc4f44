"""The HTTP gateway adapter against a gateway served on 127.0.0.1 by the test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from datasets import snapshot
from dispatch.carriers.base import CarrierUnavailable, Outgoing
from dispatch.carriers.http import HttpGateway
from kit.errors import ConfigurationError
from kit.settings import HttpGatewaySettings


class Gateway(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012 - shared with the test on purpose
    answer = 200
    refused = ""  # the destination this gateway refuses

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"auth": self.headers.get("Authorization"), **body})
        if type(self).answer != 200:
            self.send_response(type(self).answer)
            self.end_headers()
            return
        results = [
            {"ref": m["ref"], "message_id": f"gw-{m['ref']}"}
            if m["to"] != type(self).refused
            else {"ref": m["ref"], "message_id": None, "error": "invalid_destination"}
            for m in body["messages"]
        ]
        payload = json.dumps({"results": results}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway(base: snapshot.Snapshot) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Gateway.received.clear()
    Gateway.answer = 200
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/send"
    finally:
        server.shutdown()
        server.server_close()


def messages(numbers: list[str]) -> list[Outgoing]:
    """Two messages to numbers of the base; the gateway refuses the second."""
    Gateway.refused = numbers[1]
    return [
        Outgoing(1, numbers[0], "ACME", "Soldes -20% STOP au 36180", "GSM-7"),
        Outgoing(2, numbers[1], "ACME", "Soldes -20% STOP au 36180", "GSM-7"),
    ]


def test_batches_are_posted_and_answers_mapped(gateway: str, base_numbers: list[str]) -> None:
    results, feedback = HttpGateway(HttpGatewaySettings(url=gateway, token="t0ken")).submit(
        messages(base_numbers)
    )
    assert [(r.ref, r.message_id) for r in results] == [(1, "gw-1"), (2, None)]
    assert results[1].error == "invalid_destination"
    assert Gateway.received[0]["auth"] == "Bearer t0ken"
    assert [m["from"] for m in Gateway.received[0]["messages"]] == ["ACME", "ACME"]
    assert feedback.receipts == []  # receipts come back through the webhook


def test_a_busy_or_absent_gateway_is_transient(gateway: str, base_numbers: list[str]) -> None:
    Gateway.answer = 503
    with pytest.raises(CarrierUnavailable) as busy:
        HttpGateway(HttpGatewaySettings(url=gateway)).submit(messages(base_numbers))
    assert busy.value.uncertain == []  # refused: nothing was taken
    closed = gateway.rsplit(":", 1)[0] + ":9/send"  # nothing listens on port 9
    with pytest.raises(CarrierUnavailable) as down:
        HttpGateway(HttpGatewaySettings(url=closed)).submit(messages(base_numbers))
    assert down.value.uncertain == []


def test_a_synthetic_base_never_leaves_this_machine(base: snapshot.Snapshot) -> None:
    assert base.synthetic
    with pytest.raises(ConfigurationError, match="synthetic"):
        HttpGateway(HttpGatewaySettings(url="https://sms.example.com/send"))
    HttpGateway(HttpGatewaySettings(url="http://localhost:8080/send"))  # loopback: allowed
