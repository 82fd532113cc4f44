"""An integrator's client, generated from the service's OpenAPI document with a maintained
generator (openapi-python-client, offline), takes a quote and an order through the real API:
the methods are named after the operations, the results are typed, errors are the error model."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.factories import BROAD, send_at
from tests.service import add_client_key, free_port, fresh_home, own_database, serve

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "rental_client"
# No post hooks: the generated code is imported as written (formatting it would need ruff on
# the PATH and adds nothing to what is tested).
CONFIG = f"package_name_override: {PACKAGE}\npost_hooks: []\n"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The API on a home of its own, and a client's key."""
    home = tmp_path_factory.mktemp("client") / "home"
    env = own_database(fresh_home(home, 20_000, 7), "genclient")
    port = free_port()
    proc = serve(env, port)
    try:
        yield f"http://127.0.0.1:{port}", add_client_key(env, "Generated")
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def generated(service: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client package, generated from the document the service serves, warnings failing."""
    out = tmp_path_factory.mktemp("generated")
    (out / "openapi.json").write_bytes(httpx.get(service[0] + "/openapi.json").content)
    (out / "config.yaml").write_text(CONFIG)
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            "openapi.json",
            "--config",
            "config.yaml",
            "--meta",
            "none",
            "--output-path",
            PACKAGE,
            "--fail-on-warning",
        ],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out


@pytest.fixture(scope="module")
def client_module(generated: Path) -> Iterator[Any]:
    """`import rental_client` from the generated folder (unloaded afterwards)."""
    sys.path.insert(0, str(generated))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(generated))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_takes_a_quote_and_an_order(
    service: tuple[str, str], client_module: Any
) -> None:
    url, key = service
    models = _module("models")
    with client_module.AuthenticatedClient(base_url=url, token=key, timeout=60) as client:
        _quote_and_order(client, models)


def _quote_and_order(client: Any, models: ModuleType) -> None:
    """create_quote, get_quote, create_order, get_order, list_invoices: typed results."""
    create_quote = _module("api.quotes.create_quote")
    get_quote = _module("api.quotes.get_quote")
    create_order = _module("api.orders.create_order")
    get_order = _module("api.orders.get_order")
    list_invoices = _module("api.invoices.list_invoices")
    quote = create_quote.sync(client=client, body=models.Criteria.from_dict(BROAD))
    # A client's key gets the client's view: a shown count, never the exact one.
    assert type(quote) is models.QuoteOut, quote
    assert quote.shown_count >= quote.minimum_segment_size
    assert quote.orderable
    assert "exact_count" not in quote.additional_properties
    again = get_quote.sync(quote.id, client=client)
    assert type(again) is models.QuoteOut
    assert (again.id, again.shown_count) == (quote.id, quote.shown_count)

    body = models.OrderCreate(
        quote_id=quote.id,
        quantity=min(quote.shown_count, 500),
        message="Soldes d'hiver : -20% sur tout le magasin avec le code HIVER",
        sender="ACME",
        send_at=datetime.fromisoformat(send_at()),
    )
    order = create_order.sync(client=client, body=body)
    assert type(order) is models.OrderOut, order
    assert order.quote_id == quote.id
    assert order.status == "awaiting_deposit"
    read = get_order.sync(order.id, client=client)
    assert type(read) is models.OrderOut
    assert (read.id, read.status, read.quantity) == (order.id, order.status, body.quantity)

    invoices = list_invoices.sync(client=client)
    assert isinstance(invoices, models.InvoiceList)
    assert [(i.order_id, i.kind) for i in invoices.items] == [(order.id, "deposit")]


def test_errors_come_back_as_the_error_model(service: tuple[str, str], client_module: Any) -> None:
    url, key = service
    get_order = _module("api.orders.get_order")
    create_quote = _module("api.quotes.create_quote")
    models = _module("models")
    with client_module.AuthenticatedClient(base_url=url, token=key, timeout=60) as client:
        missing = get_order.sync("0" * 8 + "-0000-0000-0000-" + "0" * 12, client=client)
    assert isinstance(missing, models.ErrorOut)
    assert missing.error == "order_not_found"
    with client_module.AuthenticatedClient(base_url=url, token="rk_unknown", timeout=60) as other:
        refused = create_quote.sync_detailed(client=other, body=models.Criteria.from_dict(BROAD))
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.ErrorOut)
    assert refused.parsed.error == "invalid_api_key"
