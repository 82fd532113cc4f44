"""A fresh service as a newcomer starts it: its own RENTAL_HOME with a generated base, then
`rental up` (API, worker, scheduler) in a child process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

RENTAL = [sys.executable, "-m", "rental"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_home(home: Path, rows: int, seed: int, **settings: str) -> dict[str, str]:
    """The environment of a new home (none of this session's settings) with its own base."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENTAL_")}
    env["RENTAL_HOME"] = str(home)
    env |= {f"RENTAL_{k.upper()}": v for k, v in settings.items()}
    subprocess.run(
        [*RENTAL, "base", "generate", "--rows", str(rows), "--seed", str(seed)],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def start_up(env: dict[str, str], port: int, *args: str) -> tuple[subprocess.Popen[str], str]:
    """`rental up`, and what it printed until it said the service is ready."""
    proc = subprocess.Popen(
        [*RENTAL, "up", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    printed = ""
    deadline = time.monotonic() + 120
    while "rental demo" not in printed and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        printed += line
    return proc, printed


def own_database(env: dict[str, str], name: str) -> dict[str, str]:
    """On PostgreSQL (RENTAL_TEST_DATABASE_URL), a new database of its own on the same server
    for this home; on SQLite the home's own file already is one."""
    url = os.environ.get("RENTAL_TEST_DATABASE_URL")
    if not url:
        return env
    import uuid

    from sqlalchemy import create_engine, text

    db = f"{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    admin.dispose()
    return env | {"RENTAL_DATABASE_URL": url.rsplit("/", 1)[0] + "/" + db}


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """`rental serve` (the API alone), once it answers."""
    import httpx

    proc = subprocess.Popen(
        [*RENTAL, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
            return proc
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("rental serve did not start") from None
            time.sleep(0.3)


def add_client_key(env: dict[str, str], organisation: str) -> str:
    """A new organisation and a client key of it, through the CLI."""
    import json

    subprocess.run(
        [*RENTAL, "accounts", "add-organisation", organisation],
        env=env,
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [*RENTAL, "accounts", "add-key", "--organisation", organisation],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return str(json.loads(out)["key"])
