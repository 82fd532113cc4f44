"""The API's /metrics as Prometheus scrapes it: requests by route template, quotes served and
refused, orders by status, messages and receipts per carrier, the send cap."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from kit.settings import Settings
from tests.conftest import ScanningClient, auth
from tests.dispatch.test_workers import METRO, paid_order, running, settings_at, wait_for
from tests.factories import (
    at_send_time,
    create_order,
    create_quote,
    pay_deposit,
    send_in_process,
)
from tests.ops.metrics import label_values, value
from tests.service import free_port


def scrape(client: ScanningClient) -> str:
    r = client.get("/metrics")  # no key: Prometheus scrapes without one
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def test_requests_are_counted_by_route_template_never_by_path(
    app_client: ScanningClient, org_keys: dict[str, str], base_numbers: list[str]
) -> None:
    national = "0" + base_numbers[0][3:]
    before = scrape(app_client)
    for _ in range(3):
        r = app_client.get(f"/v1/orders/{national}", headers=auth(org_keys["acme"]))
        assert r.status_code == 404
    assert app_client.get(f"/no/such/{national}").status_code == 404
    text = scrape(app_client)
    assert "# TYPE rental_http_requests_total counter" in text
    route = {"method": "GET", "route": "/v1/orders/{order_id}", "status": "404"}
    grown = value(text, "rental_http_requests_total", **route)
    assert grown - value(before, "rental_http_requests_total", **route) == 3
    assert value(text, "rental_http_request_duration_seconds_count", route=route["route"]) >= 3
    assert "unmatched" in label_values(text, "rental_http_requests_total", "route")
    assert national not in text
    assert national[1:] not in text
    assert "/metrics" not in app_client.get("/openapi.json").json()["paths"]


def test_quotes_served_and_refused_by_reason(
    app_client: ScanningClient, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    settings(daily_quote_budget=1)
    before = scrape(app_client)
    create_quote(app_client, org_keys["acme"])
    r = app_client.post("/v1/quotes", json={"sex": ["M"]}, headers=auth(org_keys["acme"]))
    assert r.status_code == 429
    text = scrape(app_client)

    def grew(**labels: str) -> float:
        return value(text, "rental_quotes_total", **labels) - value(
            before, "rental_quotes_total", **labels
        )

    assert grew(outcome="served") == 1
    assert grew(outcome="refused", reason=r.json()["error"]) == 1


def test_orders_by_status_are_read_at_scrape_time(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    awaiting = value(scrape(app_client), "rental_orders", status="awaiting_deposit")
    create_order(app_client, org_keys["acme"])
    create_order(app_client, org_keys["acme"])
    text = scrape(app_client)
    assert value(text, "rental_orders", status="awaiting_deposit") == awaiting + 2
    assert "# TYPE rental_orders gauge" in text


def test_messages_receipts_and_cap_per_carrier(
    app_client: ScanningClient, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    """A send recorded through the dispatch flows (submissions, then receipts half an hour
    later) shows in the counters of the configured carrier, and its lag in the histogram."""
    settings(carrier_rate_per_second=40)
    before = scrape(app_client)
    quote = create_quote(app_client, org_keys["acme"], {"regions": ["11", "84"]})
    order = create_order(app_client, org_keys["acme"], quote, quantity=300)
    assert pay_deposit(app_client, org_keys["acme"], org_keys["am"], order["id"]).status_code == 201
    send_in_process(order["id"], at_send_time(order))
    text = scrape(app_client)

    def grew(name: str, **labels: str) -> float:
        return value(text, name, carrier="simulator", **labels) - value(
            before, name, carrier="simulator", **labels
        )

    submitted = grew("rental_messages_total", outcome="submitted")
    delivered = grew("rental_messages_total", outcome="delivered")
    failed = grew("rental_messages_total", outcome="failed")
    assert 250 <= submitted <= 301  # a few refused at submission; a control number may ride
    assert delivered > 0
    assert failed > 0
    expired = grew("rental_messages_total", outcome="expired")
    receipts = grew("rental_receipt_lag_seconds_count")  # failures at submission have none
    assert delivered + expired < receipts < delivered + expired + failed
    # Every receipt came 30 minutes after its submission: all in the hour's bucket, none before.
    assert grew("rental_receipt_lag_seconds_bucket", le="900.0") == 0
    assert grew("rental_receipt_lag_seconds_bucket", le="3600.0") == grew(
        "rental_receipt_lag_seconds_count"
    )
    assert value(text, "rental_carrier_rate_cap_per_second", carrier="simulator") == 40


def test_a_workers_metrics_show_the_send_rate_during_a_send(
    app_client: ScanningClient,
    org_keys: dict[str, str],
    tmp_path: Path,
    settings: Callable[..., Settings],
) -> None:
    """Real `rental worker` (two pool processes) and `rental beat` sending 400 messages under
    a cap of 100 per second: scraped while it sends, the worker's counters add up its pool's
    processes and grow; the API shows the cap the rate is measured against."""
    port = free_port()
    settings(carrier_rate_per_second=100)  # the API's and the workers' (they inherit it)
    order = paid_order(app_client, org_keys, METRO, 400)
    worker_metrics = f"http://127.0.0.1:{port}/metrics"
    seen: list[float] = []
    with running(
        tmp_path,
        **settings_at(),
        worker_metrics_port=str(port),
    ):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not seen or seen[-1] < 400):
            try:
                text = httpx.get(worker_metrics, timeout=5).text
            except httpx.TransportError:
                text = ""
            submitted = value(text, "rental_messages_total", outcome="submitted")
            if submitted:
                seen.append(submitted)
            time.sleep(0.3)
        wait_for(app_client, org_keys["acme"], order, "sent", 60)
    assert seen
    assert seen[-1] >= 400
    assert len({n for n in seen if n < 400}) >= 2  # scraped mid-send, growing
    api = scrape(app_client)
    assert value(api, "rental_carrier_rate_cap_per_second", carrier="simulator") == 100
