"""Carriers behind one interface, chosen by the setting RENTAL_CARRIER."""

from __future__ import annotations

from dispatch.carriers.base import Carrier
from kit.errors import ConfigurationError
from kit.settings import get_settings


def current() -> Carrier:
    name = get_settings().carriers.name
    if name == "simulator":
        from dispatch.carriers.simulator import Simulator

        return Simulator()
    if name == "http":
        from dispatch.carriers.http import HttpGateway

        return HttpGateway()
    if name == "smpp":
        from dispatch.carriers.smpp import SmppCarrier

        return SmppCarrier()
    raise ConfigurationError(f"unknown carrier {name!r}: use simulator, smpp or http")
