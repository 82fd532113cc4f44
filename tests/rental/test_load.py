"""Under a burst of concurrent requests a real `rental serve` answers every quote with a count,
a 503 that says when to retry, or, once the organisation's daily budget is spent, a 429: never
a 500, and never one quote more than the budget."""

from __future__ import annotations

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
