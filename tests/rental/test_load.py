"""Under a burst of concurrent requests a real `rental serve` answers every quote with a count,
a 503 that says when to retry, or, once the organisation's daily budget is spent, a 429: never
a 500, and never one quote more than the budget."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from datasets import reference
from tests.service import add_client_key, free_port, fresh_home, own_database, serve

DEPARTMENTS = reference.departments()["code"].to_list()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home: Path = tmp_path_factory.mktemp("load") / "home"
    env = own_database(fresh_home(home, 20_000, 5, daily_quote_budget="20"), "load")
    port = free_port()
    proc: subprocess.Popen[bytes] = serve(env, port)
    try:
        yield f"http://127.0.0.1:{port}", env
    finally:
        proc.terminate()
        proc.wait(30)


def _burst(url: str, key: str, n: int, retry_busy: bool) -> list[httpx.Response]:
    """`n` quotes at once, each for other departments; with `retry_busy`, a 503 is retried
    after the Retry-After it gave (as a well-behaved client does)."""

    def one(i: int) -> httpx.Response:
        body = {"departments": [DEPARTMENTS[i % len(DEPARTMENTS)]]}
        with httpx.Client(base_url=url, timeout=60) as http:
            while True:
                r = http.post("/v1/quotes", json=body, headers={"Authorization": f"Bearer {key}"})
                if r.status_code != 503 or not retry_busy:
                    return r
                time.sleep(float(r.headers["retry-after"]))

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_fifty_concurrent_quotes_get_a_count_or_a_retry_after(
    server: tuple[str, dict[str, str]],
) -> None:
    url, env = server
    key = add_client_key(env, "Burst")
    answers = _burst(url, key, 50, retry_busy=False)
    statuses = Counter(r.status_code for r in answers)
    assert set(statuses) <= {201, 429, 503}, statuses
    assert statuses[201] >= 1
    for r in answers:
        if r.status_code in (429, 503):
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["error"] in ("busy", "quote_budget_exhausted")


def test_concurrent_quotes_never_go_past_the_daily_budget(
    server: tuple[str, dict[str, str]],
) -> None:
    url, env = server
    key = add_client_key(env, "Budget")
    answers = _burst(url, key, 50, retry_busy=True)
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {201: 20, 429: 30}, statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"] == "quote_budget_exhausted"
    assert int(refused.headers["retry-after"]) >= 1
    # The budget holds for the rest of the day.
    again = httpx.post(
        f"{url}/v1/quotes", json={}, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    assert again.status_code == 429


def test_per_address_limits_see_the_visitor_behind_the_proxy(
    server: tuple[str, dict[str, str]],
) -> None:
    """Behind a proxy the server believes (RENTAL_FORWARDED_ALLOW_IPS, 127.0.0.1 by default),
    the sign-in throttle counts each visitor's address from X-Forwarded-For: one visitor's
    failures do not lock out the next one behind the same proxy."""
    url, env = server

    def attempt(visitor: str, n: int, at: str = url) -> int:
        with httpx.Client(base_url=at, timeout=60) as http:
            headers = {"X-Forwarded-For": visitor}
            page = http.get("/", headers=headers).text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token
            form = {"email": f"guess-{n}@nowhere.test", "password": "wrong-password-1"}
            r = http.post("/sign-in", data=form | {"csrf_token": token.group(1)}, headers=headers)
            return r.status_code

    first = [attempt("198.51.100.7", n) for n in range(21)]
    assert first[:20] == [401] * 20
    assert first[20] == 429  # this visitor's address is throttled
    assert attempt("203.0.113.9", 99) == 401  # the next visitor is not

    # A server that believes another proxy only: every visitor is the proxy's address.
    port = free_port()
    other = serve(env | {"RENTAL_FORWARDED_ALLOW_IPS": "192.0.2.1"}, port)
    try:
        there = f"http://127.0.0.1:{port}"
        assert [attempt("198.51.100.8", n, there) for n in range(20)] == [401] * 20
        assert attempt("203.0.113.10", 100, there) == 429  # counted as the same address
    finally:
        other.terminate()
        other.wait(30)
