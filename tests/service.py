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
