"""Real carrier adapters never send a synthetic base's numbers to a real network."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from datasets import snapshot
from kit.errors import ConfigurationError
from kit.settings import get_settings


def _loopback(host: str) -> bool:
    """A literal loopback address, or localhost; no name is resolved (no DNS query leaves)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_synthetic_base_off_loopback(endpoint: str) -> None:
    """A base whose manifest says `synthetic: true` holds realistic, possibly real-looking
    numbers: it may only go to a carrier on this machine (a simulator, a test SMSC)."""
    host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or endpoint
    current = snapshot.current(get_settings().base_dir)
    if current.synthetic and not _loopback(host):
        raise ConfigurationError(
            f"the current base is synthetic: it may not be sent to {host}, only to a carrier "
            "on 127.0.0.1"
        )
