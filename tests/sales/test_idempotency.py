"""Idempotency-Key: a retried POST gets the first answer and creates nothing more, even when the
two requests arrive at once, in one process or in two."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from kit import clock, locks
from kit.db import unit_of_work
from kit.errors import InvalidInput, TooManyRequests
from kit.settings import Settings
from sales.accounts.deps import PrincipalDep, SessionDep
from sales.idempotency import service
from sales.idempotency.guard import Idempotent, IdempotentRoute
from sales.idempotency.models import IdempotencyKey
from sales.invoices.models import Invoice
from sales.orders.models import Order
from tests.conftest import ScanningClient, auth
from tests.factories import create_quote, order_body
from tests.sales import concurrency_child

LOIRE = {"departments": ["44", "49"], "sex": ["M"]}


def new_key() -> str:
    return str(uuid.uuid4())


def with_key(api_key: str, idempotency_key: str) -> dict[str, str]:
    return auth(api_key) | {"Idempotency-Key": idempotency_key}


def orders_of(quote_id: str) -> list[str]:
    with unit_of_work() as session:
        return list(session.scalars(select(Order.id).where(Order.quote_id == quote_id)))


def deposit_invoices(order_ids: list[str]) -> int:
    with unit_of_work() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    Invoice.order_id.in_(order_ids), Invoice.kind == "deposit"
                )
            )
            or 0
        )


@pytest.fixture
def quote(app_client: ScanningClient, org_keys: dict[str, str]) -> dict[str, Any]:
    return create_quote(app_client, org_keys["acme"], LOIRE)


def test_a_retried_order_is_the_first_order(
    app_client: ScanningClient, org_keys: dict[str, str], quote: dict[str, Any]
) -> None:
    key = new_key()
    body = order_body(quote, quantity=150)
    before = set(orders_of(quote["id"]))
    first = app_client.post("/v1/orders", json=body, headers=with_key(org_keys["acme"], key))
    assert first.status_code == 201, first.text
    # A retry, its JSON written another way (other key order, other spacing): the same request.
    again = app_client.post(
        "/v1/orders",
        content=json.dumps(dict(reversed(body.items())), indent=2),
        headers=with_key(org_keys["acme"], key) | {"Content-Type": "application/json"},
    )
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert set(orders_of(quote["id"])) - before == {first.json()["id"]}
    assert deposit_invoices([first.json()["id"]]) == 1
    # Without a key, the same body is a new order, as before.
    other = app_client.post("/v1/orders", json=body, headers=auth(org_keys["acme"]))
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]


def test_the_same_key_for_another_request_is_refused(
    app_client: ScanningClient, org_keys: dict[str, str], quote: dict[str, Any]
) -> None:
    key = new_key()
    headers = with_key(org_keys["acme"], key)
    first = app_client.post("/v1/orders", json=order_body(quote, quantity=150), headers=headers)
    assert first.status_code == 201
    before = orders_of(quote["id"])

    other_body = app_client.post(
        "/v1/orders", json=order_body(quote, quantity=160), headers=headers
    )
    assert other_body.status_code == 422
    assert other_body.json()["error"] == "idempotency_key_reused"
    assert "another request body" in other_body.json()["detail"]

    other_route = app_client.post("/v1/quotes", json=LOIRE, headers=headers)
    assert other_route.status_code == 422
    assert "another route" in other_route.json()["detail"]

    other_query = app_client.post(
        "/v1/orders",
        params={"anything": "1"},
        json=order_body(quote, quantity=150),
        headers=headers,
    )
    assert other_query.status_code == 422
    for r in (other_body, other_route, other_query):
        assert key not in r.text
    assert orders_of(quote["id"]) == before


def test_keys_belong_to_their_organisation(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    key = new_key()
    acme = app_client.post("/v1/quotes", json=LOIRE, headers=with_key(org_keys["acme"], key))
    globex = app_client.post("/v1/quotes", json=LOIRE, headers=with_key(org_keys["globex"], key))
    assert acme.status_code == globex.status_code == 201
    assert acme.json()["id"] != globex.json()["id"]
    assert "Idempotent-Replayed" not in globex.headers
    # Each organisation's retry gets its own first answer, never the other's.
    for api_key, first in ((org_keys["acme"], acme), (org_keys["globex"], globex)):
        again = app_client.post("/v1/quotes", json=LOIRE, headers=with_key(api_key, key))
        assert again.json()["id"] == first.json()["id"]
    # Another body under the same key is still refused inside one organisation only.
    narrower = app_client.post(
        "/v1/quotes", json=LOIRE | {"sex": ["F"]}, headers=with_key(org_keys["globex"], key)
    )
    assert narrower.status_code == 422


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("k" * 256, id="too-long"),
        pytest.param("caf\u00e9-1234", id="not-ascii"),
        pytest.param("tab\there", id="control-character"),
        pytest.param("", id="empty"),
    ],
)
def test_a_malformed_key_is_refused_without_echo(
    app_client: ScanningClient, org_keys: dict[str, str], quote: dict[str, Any], bad: str
) -> None:
    before = orders_of(quote["id"])
    r = app_client.post(
        "/v1/orders",
        json=order_body(quote, quantity=150),
        headers=[
            (b"Authorization", f"Bearer {org_keys['acme']}".encode()),
            (b"Idempotency-Key", bad.encode("latin-1")),  # what a client sends, as bytes
        ],
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_idempotency_key"
    assert "255 printable ASCII" in r.json()["detail"]
    if bad:
        assert bad not in r.text
    assert orders_of(quote["id"]) == before


def test_the_longest_key_is_taken_and_a_stranger_learns_nothing(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    longest = "~" * 128 + " " + "A" * 126
    r = app_client.post("/v1/quotes", json=LOIRE, headers=with_key(org_keys["acme"], longest))
    assert r.status_code == 201
    # Without a valid API key the answer is a 401, whatever the key (never its stored answer).
    stranger = app_client.post(
        "/v1/quotes", json=LOIRE, headers={"Idempotency-Key": longest, "Authorization": "Bearer x"}
    )
    assert stranger.status_code == 401


def test_concurrent_retries_make_one_order(
    app_client: ScanningClient, org_keys: dict[str, str], quote: dict[str, Any]
) -> None:
    key = new_key()
    body = order_body(quote, quantity=170)
    before = set(orders_of(quote["id"]))
    start = threading.Barrier(4)

    def post(_: int) -> Any:
        start.wait(timeout=30)
        return app_client.post("/v1/orders", json=body, headers=with_key(org_keys["acme"], key))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(4)))
    assert [r.status_code for r in answers] == [201] * 4
    assert len({r.json()["id"] for r in answers}) == 1
    made = sorted(set(orders_of(quote["id"])) - before)
    assert made == [answers[0].json()["id"]]
    assert deposit_invoices(made) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == 3


def test_concurrent_retries_in_two_processes_make_one_order(
    app_client: ScanningClient, org_keys: dict[str, str], quote: dict[str, Any]
) -> None:
    key = new_key()
    body = order_body(quote, quantity=180)
    before = set(orders_of(quote["id"]))
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=concurrency_child.post_order,
            args=(org_keys["acme"], key, body, barrier, results),
        )
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    answers = [results.get(timeout=5) for _ in procs]
    assert [status for status, _ in answers] == [201, 201]
    made = sorted(set(orders_of(quote["id"])) - before)
    assert len(made) == 1
    assert {oid for _, oid in answers} == set(made)
    assert deposit_invoices(made) == 1


def test_a_key_is_new_again_after_a_day_and_expired_keys_are_purged(
    app_client: ScanningClient, org_keys: dict[str, str]
) -> None:
    key = new_key()
    headers = with_key(org_keys["acme"], key)
    first = app_client.post("/v1/quotes", json=LOIRE, headers=headers)
    assert app_client.post("/v1/quotes", json=LOIRE, headers=headers).json() == first.json()

    def age(hours: float) -> None:
        with unit_of_work() as session:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key_digest == service.digest(key))
                .values(created_at=clock.now() - timedelta(hours=hours))
            )

    age(23.9)
    assert app_client.post("/v1/quotes", json=LOIRE, headers=headers).json() == first.json()
    age(24.1)
    later = app_client.post("/v1/quotes", json=LOIRE, headers=headers)
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in later.headers

    age(25)
    fresh = new_key()
    assert app_client.post("/v1/quotes", json=LOIRE, headers=with_key(org_keys["acme"], fresh))
    with unit_of_work() as session:
        service.purge(session, clock.now())
    with unit_of_work() as session:
        left = set(session.scalars(select(IdempotencyKey.key_digest)))
    assert service.digest(key) not in left
    assert service.digest(fresh) in left


def test_the_header_is_documented_on_the_creating_posts(app_client: ScanningClient) -> None:
    doc = app_client.get("/openapi.json").json()
    for path in ("/v1/orders", "/v1/quotes"):
        params = doc["paths"][path]["post"]["parameters"]
        header = [p for p in params if p["name"] == "Idempotency-Key"]
        assert len(header) == 1
        assert header[0]["in"] == "header"
        assert header[0]["required"] is False
        assert header[0]["schema"]["maxLength"] == 255
        # The API key is the document's bearer security scheme, not a header of its own.
        assert not [p for p in params if p["name"].lower() == "authorization"]
        assert doc["paths"][path]["post"]["security"] == [{"ApiKey": []}]
    pay = doc["paths"]["/v1/orders/{order_id}/payments"]["post"]["parameters"]
    assert "Idempotency-Key" not in {p["name"] for p in pay}  # idempotent on its reference


# The guard on a route of its own, whose behaviour the test scripts call by call: what a real
# endpoint does only by accident (a crash, a slow request, a "retry later").


@dataclass
class Probe:
    client: TestClient
    script: list[str] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)
    counter: str = ""

    def post(self, api_key: str, key: str) -> Any:
        return self.client.post("/probe", json={"x": 1}, headers=with_key(api_key, key))

    def runs(self) -> int:
        """Runs of the endpoint whose transaction committed."""
        with unit_of_work() as session:
            return locks.current_value(session, self.counter)


@pytest.fixture
def probe(org_keys: dict[str, str]) -> Probe:
    from rental.app import create_app

    app = create_app()
    router = APIRouter(route_class=IdempotentRoute)
    probe = Probe(TestClient(app, raise_server_exceptions=False), counter=f"probe:{new_key()}")

    @router.post("/probe", status_code=201, dependencies=[Idempotent])
    def run(body: dict[str, int], who: PrincipalDep, session: SessionDep) -> dict[str, int]:
        act = probe.script.pop(0)
        if act == "wait":
            probe.entered.set()
            probe.gate.wait(timeout=30)
        run = locks.next_value(session, probe.counter)  # a write in the request's transaction
        if act == "crash":
            raise RuntimeError("the endpoint failed")
        if act == "refuse":
            raise InvalidInput("refused for a reason that will not change")
        if act == "later":
            raise TooManyRequests("busy now", retry_after_seconds=5)
        return {"run": run}

    app.include_router(router)
    return probe


def in_background(work: Callable[[], Any]) -> tuple[ThreadPoolExecutor, Any]:
    pool = ThreadPoolExecutor(1)
    return pool, pool.submit(work)


def test_a_retry_waits_for_the_request_it_repeats(probe: Probe, org_keys: dict[str, str]) -> None:
    key = new_key()
    probe.script[:] = ["wait"]
    pool, first = in_background(lambda: probe.post(org_keys["acme"], key))
    assert probe.entered.wait(10)
    _, second = in_background(lambda: probe.post(org_keys["acme"], key))
    time.sleep(0.5)
    assert not second.done()  # waiting, not running the endpoint again
    probe.gate.set()
    a, b = first.result(10), second.result(10)
    assert a.status_code == b.status_code == 201
    assert a.json() == b.json() == {"run": 1}
    assert b.headers["Idempotent-Replayed"] == "true"
    assert probe.runs() == 1
    pool.shutdown()


def test_a_retry_that_waited_too_long_is_told_to_come_back(
    probe: Probe, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    settings(idempotency_wait_seconds=0.3)
    key = new_key()
    probe.script[:] = ["wait"]
    pool, first = in_background(lambda: probe.post(org_keys["acme"], key))
    assert probe.entered.wait(10)
    busy = probe.post(org_keys["acme"], key)
    assert busy.status_code == 409
    assert busy.json()["error"] == "idempotency_key_in_progress"
    assert "still in progress" in busy.json()["detail"]
    assert int(busy.headers["Retry-After"]) > 0
    probe.gate.set()
    assert first.result(10).status_code == 201
    assert probe.post(org_keys["acme"], key).json() == {"run": 1}
    assert probe.runs() == 1
    pool.shutdown()


def test_a_server_error_releases_the_key(probe: Probe, org_keys: dict[str, str]) -> None:
    key = new_key()
    probe.script[:] = ["crash", "ok"]
    assert probe.post(org_keys["acme"], key).status_code == 500
    assert probe.runs() == 0  # rolled back
    retry = probe.post(org_keys["acme"], key)
    assert retry.status_code == 201
    assert retry.json() == {"run": 1}
    assert probe.post(org_keys["acme"], key).json() == {"run": 1}


def test_a_refusal_is_replayed_but_not_a_retry_later(
    probe: Probe, org_keys: dict[str, str]
) -> None:
    refused = new_key()
    probe.script[:] = ["refuse", "ok"]
    first = probe.post(org_keys["acme"], refused)
    assert first.status_code == 422
    again = probe.post(org_keys["acme"], refused)
    assert (again.status_code, again.content) == (422, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert probe.script == ["ok"]  # the endpoint did not run again

    later = new_key()
    probe.script[:] = ["later", "ok"]
    assert probe.post(org_keys["acme"], later).status_code == 429
    assert probe.post(org_keys["acme"], later).status_code == 201


def test_a_request_presumed_dead_loses_its_key_and_creates_nothing(
    probe: Probe, org_keys: dict[str, str], settings: Callable[..., Settings]
) -> None:
    settings(idempotency_lease_seconds=1)
    key = new_key()
    probe.script[:] = ["wait", "ok"]
    pool, stuck = in_background(lambda: probe.post(org_keys["acme"], key))
    assert probe.entered.wait(10)
    time.sleep(1.2)
    retry = probe.post(org_keys["acme"], key)  # takes the key over and runs
    assert (retry.status_code, retry.json()) == (201, {"run": 1})
    probe.gate.set()
    late = stuck.result(10)
    assert late.status_code == 409
    assert late.json()["error"] == "idempotency_key_taken_over"
    assert probe.runs() == 1  # the stuck request's work was rolled back
    assert probe.post(org_keys["acme"], key).json() == {"run": 1}
    pool.shutdown()
