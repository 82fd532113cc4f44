"""Readiness (`/v1/health/ready`) against real servers: a Redis server of the test's own, then
stopped; a base too old; a carrier not configured. Liveness stays cheap and answers."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from kit import clock
from kit.settings import Settings
from tests.conftest import ScanningClient
from tests.service import free_port


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real Redis server on a free port of its own (the system's binary)."""
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        pytest.skip("no redis-server on this machine")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)


def test_not_ready_while_redis_is_down(
    app_client: ScanningClient,
    settings: Callable[..., Settings],
    redis_server: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, url = redis_server
    settings(redis_url=url)
    r = app_client.get("/v1/health/ready")  # no key: probes ask without one
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"
    assert set(r.json()["checks"]) == {"database", "redis", "base", "carrier"}

    proc.terminate()
    proc.wait(10)
    started = time.monotonic()
    r = app_client.get("/v1/health/ready")
    assert time.monotonic() - started < 5  # short timeouts: a probe never hangs
    assert r.status_code == 503
    body = r.json()
    assert body["error"] == "not_ready"  # the service's error shape, the checks beside it
    assert body["detail"].startswith("redis: ")
    assert body["failed"] == ["redis"]
    assert "RENTAL_REDIS_URL" in body["checks"]["redis"]["detail"]  # what to check
    assert app_client.get("/v1/health").status_code == 200  # alive all the same


def test_not_ready_with_an_old_base_or_a_carrier_not_configured(
    app_client: ScanningClient,
    settings: Callable[..., Settings],
    redis_server: tuple[subprocess.Popen[bytes], str],
) -> None:
    settings(
        redis_url=redis_server[1],
        now=(clock.now() + timedelta(days=50)).isoformat(),
        carrier="smpp",
    )
    r = app_client.get("/v1/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["failed"] == ["base", "carrier"]
    assert "rental base refresh" in body["checks"]["base"]["detail"]
    assert "RENTAL_SMPP_HOST" in body["checks"]["carrier"]["detail"]

    settings(base_max_age_days=60, smpp_host="127.0.0.1")
    r = app_client.get("/v1/health/ready")
    assert r.status_code == 200, r.text  # nothing was sent to the SMSC to find out
