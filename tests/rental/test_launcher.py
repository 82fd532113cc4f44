"""`rental up` on a fresh home: the API, a worker and the scheduler start, the printed keys
work, and Ctrl-C stops everything it started (the private Redis server included)."""

from __future__ import annotations

import re
import signal
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psutil

from rental import launcher
from tests.conftest import ScanningClient, auth
from tests.service import free_port, fresh_home, start_up


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
    env = fresh_home(home, 3000, 3)
    port = free_port()
    proc, out = start_up(env, port, "--concurrency", "1")
    try:
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


def test_what_up_started_dies_with_it_even_when_it_is_killed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = fresh_home(home, 3000, 4)
    proc, out = start_up(env, free_port(), "--concurrency", "1")
    assert "rental demo" in out, out
    proc.kill()  # SIGKILL: no chance to stop its children itself
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while _ours(home) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ours(home) == []


def test_each_up_revokes_the_demo_keys_it_printed_before(app_client: ScanningClient) -> None:
    first = launcher.demo_keys("127.0.0.1", 8000)
    second = launcher.demo_keys("127.0.0.1", 8000)
    assert launcher.load_keys() == second
    for role in ("client", "manager"):
        assert app_client.get("/v1/orders", headers=auth(first[role])).status_code == 401
        assert app_client.get("/v1/orders", headers=auth(second[role])).status_code == 200


PARIS_TIME = ZoneInfo("Europe/Paris")


def test_a_demo_started_just_before_the_window_closes_waits_for_the_next_opening() -> None:
    # Friday 4 December 2026 at 21:59 in Paris: open for one more minute, too little for a
    # demo rental sent 30 s after its order (CI once waited for Saturday morning here).
    late = datetime(2026, 12, 4, 21, 59, tzinfo=PARIS_TIME)
    opening = launcher.demo_start(late)
    assert opening is not None
    assert opening.astimezone(PARIS_TIME) == datetime(2026, 12, 5, 8, 0, tzinfo=PARIS_TIME)


def test_a_demo_inside_the_window_keeps_the_real_clock() -> None:
    assert launcher.demo_start(datetime(2026, 12, 4, 15, 0, tzinfo=PARIS_TIME)) is None


def test_a_demo_on_a_sunday_starts_on_monday_morning() -> None:
    opening = launcher.demo_start(datetime(2026, 12, 6, 12, 0, tzinfo=PARIS_TIME))
    assert opening is not None
    assert opening.astimezone(PARIS_TIME) == datetime(2026, 12, 7, 8, 0, tzinfo=PARIS_TIME)
