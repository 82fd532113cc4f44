"""Carriers behind one interface, chosen by the setting RENTAL_CARRIER; each built with its
own settings."""

from __future__ import annotations

from pathlib import Path

from dispatch.carriers.base import Carrier
from kit.errors import ConfigurationError
from kit.settings import CarriersSettings


def current(settings: CarriersSettings, home: Path) -> Carrier:
    """The carrier `settings.name` names (`home` holds the simulator's log)."""
    name = settings.name
    if name == "simulator":
        from dispatch.carriers.simulator import Simulator

        return Simulator(settings.simulator, home)
    if name == "http":
        from dispatch.carriers.http import HttpGateway

        return HttpGateway(settings.http)
    if name == "smpp":
        from dispatch.carriers.smpp import SmppCarrier

        return SmppCarrier(settings.smpp)
    raise ConfigurationError(f"unknown carrier {name!r}: use simulator, smpp or http")
