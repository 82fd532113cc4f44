"""`rental up`: the whole service on one machine, with embedded defaults: the API, a dispatch
worker and the scheduler, each a child process in its own process group, sharing one
RENTAL_HOME (SQLite, the private Redis server, the simulator carrier). Ctrl-C (or SIGTERM)
stops all of them; the private Redis server stops after the last of them.

When the legal send window is closed in Paris and no RENTAL_NOW is given, the service's clock
starts at the next opening so that a demo rental goes out at once; the window check itself is
never switched off.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

import httpx

from datasets.geography import PARIS
from dispatch import windows
from kit import clock, redisd
from kit.settings import get_settings, reset_settings

CHILDREN = ("api", "worker", "beat")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEMO_WINDOW_NEEDED = timedelta(minutes=30)
PR_SET_PDEATHSIG = 1


def demo_start(now: datetime) -> datetime | None:
    """Where a demo's clock should start: None when the Paris window is open now and stays open
    long enough for a demo rental (sent 30 s after its order) to go out, otherwise its next
    opening."""
    paris = windows.calendar_of(PARIS)
    if windows.seconds_left(paris, now) >= DEMO_WINDOW_NEEDED.total_seconds():
        return None
    after = windows.closing(paris, now) if windows.is_open(paris, now) else now
    return windows.next_opening(paris, after)


def demo_clock(out: Callable[[str], None]) -> None:
    """Start the clock at `demo_start` unless RENTAL_NOW already sets it."""
    if get_settings().now is not None:
        return
    opening = demo_start(clock.now())
    if opening is None:
        return
    os.environ["RENTAL_NOW"] = opening.isoformat()
    reset_settings()
    clock.reset()
    out(
        f"The legal send window is closed now or closes within "
        f"{DEMO_WINDOW_NEEDED.seconds // 60} minutes; the service's clock starts at its next "
        f"opening, {clock.human(opening)} (RENTAL_NOW), and runs on from there."
    )


def worker_metrics() -> str:
    ops = get_settings().operations
    if not ops.worker_metrics_port:
        return "not served (RENTAL_WORKER_METRICS_PORT=0)"
    return f"http://{ops.worker_metrics_host}:{ops.worker_metrics_port}/metrics"


def keys_file() -> Path:
    return get_settings().home / "demo-keys.json"


def save_keys(keys: dict[str, str]) -> None:
    path = keys_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f)


def load_keys() -> dict[str, str]:
    return dict(json.loads(keys_file().read_text()))


def previous_keys() -> list[str]:
    """The demo keys a previous `rental up` of this home printed (none on a fresh home)."""
    try:
        saved = load_keys()
    except (OSError, ValueError):
        return []
    return [saved[role] for role in ("client", "manager") if role in saved]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when `rental up` dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, host: str, port: int, concurrency: int, out: Callable[[str], None]):
        self.host, self.port, self.concurrency, self.out = host, port, concurrency, out
        self.logs = get_settings().home / "logs"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def command(self, name: str) -> list[str]:
        rental = [sys.executable, "-m", "rental"]
        if name == "api":
            return [*rental, "serve", "--host", self.host, "--port", str(self.port)]
        if name == "worker":
            return [*rental, "worker", "--concurrency", str(self.concurrency)]
        return [*rental, "beat"]

    def environment(self, name: str) -> dict[str, str]:
        """The worker's pool adds up its metrics in a directory of its own (prometheus-client's
        multiprocess mode), set before the process starts and emptied at each start."""
        env = dict(os.environ)
        if name == "worker":
            path = get_settings().home.resolve() / "metrics" / "worker-up"
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            env[MULTIPROC_ENV] = str(path)
        return env

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in CHILDREN:
            with open(self.logs / f"{name}.log", "ab") as log:  # the child keeps its own copy
                self.procs[name] = subprocess.Popen(  # noqa: S603 - our own CLI
                    self.command(name),
                    env=self.environment(name),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches us; we stop them in order
                    preexec_fn=_die_with_parent,  # only prctl between fork and exec
                )

    def wait_ready(self, seconds: float = 120) -> bool:
        url = f"http://{self.host}:{self.port}/v1/health"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.dead():
                return False
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        return False

    def dead(self) -> str | None:
        return next((n for n, p in self.procs.items() if p.poll() is not None), None)

    def stop(self) -> None:
        """SIGTERM to every child's process group, then SIGKILL to what is still there. Another
        Ctrl-C meanwhile does not cut this short (the children would outlive us)."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its pool processes too
            except ProcessLookupError:
                pass
            proc.wait()


def demo_keys(host: str, port: int) -> dict[str, str]:
    """The demo organisation's client key and an account manager's key, saved (0600) for
    `rental demo`. The keys a previous `rental up` of this home printed are revoked first."""
    from kit.db import unit_of_work
    from sales.accounts import service as accounts
    from sales.accounts.exceptions import KeyNotFound
    from sales.accounts.models import Role
    from sales.accounts.repository import AccountRepository

    s = get_settings()
    with unit_of_work() as session:
        accounts.operator(session)
        if AccountRepository(session).organisation_by_name("Demo") is None:
            accounts.add_organisation(session, "Demo")
        for old in previous_keys():  # the keys printed last time stop working now
            with contextlib.suppress(KeyNotFound):
                accounts.revoke_key(session, old)
        client = accounts.add_key(session, "Demo", Role.client, "demo-client")
        manager = accounts.add_key(
            session, s.broker_organisation, Role.account_manager, "demo-manager"
        )
    keys = {"url": f"http://{host}:{port}", "client": client.key, "manager": manager.key}
    save_keys(keys)
    return keys


DEMO_PEOPLE = (  # who signs in to the web app after `rental up`: (organisation, role, e-mail)
    ("Demo", "client", "marketing@demo.test"),
    (None, "account_manager", "gestion@courtier.test"),
)


def demo_people() -> dict[str, str]:
    """The demo marketer and account manager of the web app, with fresh passwords (printed,
    like the keys: a previous start's passwords stop working)."""
    import secrets

    from kit.db import unit_of_work
    from sales.accounts import service as accounts
    from sales.accounts import signin
    from sales.accounts.models import Role
    from sales.accounts.repository import AccountRepository, SignInRepository

    people: dict[str, str] = {}
    with unit_of_work() as session:
        if AccountRepository(session).organisation_by_name("Demo") is None:
            accounts.add_organisation(session, "Demo")
        for organisation, role, email in DEMO_PEOPLE:
            password = secrets.token_urlsafe(12)
            if SignInRepository(session).user_by_email(email) is None:
                org = organisation or get_settings().broker_organisation
                signin.add_user(session, org, Role(role), email, password)
            else:
                signin.reset_password(session, email, password)
            people[email] = password
    return people


def up(host: str, port: int, concurrency: int, out: Callable[[str], None]) -> int:
    from rental.migrations import upgrade

    demo_clock(out)
    upgrade()
    keys = demo_keys(host, port)
    people = demo_people()

    supervisor = Supervisor(host, port, concurrency, out)

    def on_signal(signum: int, _: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)  # the terminal closed
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    try:
        supervisor.start()
        out("Starting the API, a dispatch worker and the scheduler...")
        if not supervisor.wait_ready():
            failed = supervisor.dead() or "api"
            out(f"The {failed} did not start: see {supervisor.logs / (failed + '.log')}")
            return 1
        out(f"Service running at http://{host}:{port} (OpenAPI docs: /docs)")
        out(f"  client key (organisation Demo):    {keys['client']}")
        out(f"  account manager key (the broker):  {keys['manager']}")
        out(f"Web app: http://{host}:{port}/  sign in as")
        for email, password in people.items():
            out(f"  {email:<26} password {password}")
        out(f"  logs: {supervisor.logs}/{{api,worker,beat}}.log (JSON lines)")
        out(f"  metrics: http://{host}:{port}/metrics (API), {worker_metrics()} (worker)")
        out(f"  broker: {redisd.which()}")
        out("Run a complete demo rental from another terminal: rental demo   (Ctrl-C stops all)")
        while True:
            stopped = supervisor.dead()
            if stopped is not None:
                log = supervisor.logs / f"{stopped}.log"
                out(f"The {stopped} stopped unexpectedly: see {log}")
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        out("Stopping...")
        return 0
    finally:
        supervisor.stop()
        out("Stopped: the API, the worker and the scheduler.")
