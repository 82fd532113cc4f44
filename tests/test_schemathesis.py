"""schemathesis against the real API (`rental serve`) on a small base of its own, with a client's
key and with an account manager's: every check, every phase (stateful included), bounded to
well under a minute per role. What it may not report is listed, with the reason, in
tests/schemathesis.toml; anything else (a 5xx above all) fails the suite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service import RENTAL, free_port, fresh_home

CONFIG = Path(__file__).with_name("schemathesis.toml")
ROWS, SEED = 20_000, 3
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("RENTAL_TEST_DATABASE_URL")),
    reason="the fuzzed server has a home of its own, on SQLite: the PostgreSQL run would repeat it",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The API on its own home and base, and a client's and an account manager's keys."""
    home = tmp_path_factory.mktemp("fuzz")
    env = fresh_home(home, ROWS, SEED, daily_quote_budget="100000")
    made = subprocess.run(
        [*RENTAL, "demo-accounts", "--organisation", "Fuzz"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    keys = {
        ("client" if line.startswith("client") else "am"): line.split()[-1]
        for line in made.stdout.splitlines()
        if "key" in line
    }
    port = free_port()
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [*RENTAL, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(url + "/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, (home / "server.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.3)
        yield url, env | {f"ST_KEY_{k.upper()}": v for k, v in keys.items()}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    server_log = (home / "server.log").read_text()
    assert "Traceback" not in server_log, server_log[-5000:]


@pytest.mark.parametrize("role", ["client", "am"])
def test_schemathesis_finds_nothing(server: tuple[str, dict[str, str]], role: str) -> None:
    url, env = server
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{url}/openapi.json",
        ],
        env=env | {"ST_API_KEY": env[f"ST_KEY_{role.upper()}"]},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert " passed" in run.stdout
