"""`rental up` on a fresh home: the API, a worker and the scheduler start, the printed keys
work, and Ctrl-C stops everything it started (the private Redis server included)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ours(home: Path) -> list[psutil.Process]:
    """Every process started for this home: its command line or environment names it."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            env = proc.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(home) in cmdline or env.get("RENTAL_HOME") == str(home):
            found.append(proc)
    return found


def test_up_starts_everything_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENTAL_")}
    env["RENTAL_HOME"] = str(home)
    rental = [sys.executable, "-m", "rental"]
    subprocess.run(
        [*rental, "base", "generate", "--rows", "3000", "--seed", "3"],
        env=env,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    proc = subprocess.Popen(
        [*rental, "up", "--port", str(port), "--concurrency", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "rental demo" in line or not line:
                break
        out = "".join(lines)
        assert f"http://127.0.0.1:{port}" in out, out
        client_key = re.search(r"client key.*?(rk_\S+)", out)
        manager_key = re.search(r"account manager key.*?(rk_\S+)", out)
        assert client_key is not None
        assert manager_key is not None
        url = f"http://127.0.0.1:{port}/v1"
        mine = httpx.get(f"{url}/orders", headers={"Authorization": f"Bearer {client_key[1]}"})
        assert mine.status_code == 200
        orgs = httpx.get(
            f"{url}/organisations", headers={"Authorization": f"Bearer {manager_key[1]}"}
        )
        assert "Demo" in {o["name"] for o in orgs.json()}
        names = {" ".join(p.info["cmdline"][2:4]) for p in _ours(home) if p.info["cmdline"]}
        assert {"rental serve", "rental worker", "rental beat"} <= names
        assert any("redis" in " ".join(p.info["cmdline"] or []) for p in _ours(home))
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Stopped" in rest
    deadline = time.monotonic() + 15  # the Redis supervisor follows its last user
    while _ours(home) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ours(home) == []  # nothing left running
