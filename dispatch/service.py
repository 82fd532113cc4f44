"""Reads of the carriers' shared status (written by the workers: dispatch/flows.py)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dispatch.models import CarrierStatus
from dispatch.repository import CarrierStatusRepository
from dispatch.schemas import CarrierHealth, CarrierStatusOut
from dispatch.states import CarrierState
from kit.settings import get_settings

UNKNOWN = CarrierState.unknown


def _out(name: str, row: CarrierStatus | None, configured: bool) -> CarrierStatusOut:
    if row is None:
        return CarrierStatusOut(
            name=name,
            state=UNKNOWN,
            since=None,
            configured=configured,
            last_error=None,
            last_error_at=None,
            last_success_at=None,
        )
    return CarrierStatusOut(
        name=name,
        state=row.state,
        since=row.since,
        configured=configured,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        last_success_at=row.last_success_at,
    )


def statuses(session: Session) -> list[CarrierStatusOut]:
    """The configured carrier first (`unknown` before any contact), then any other carrier
    the workers used before."""
    current = get_settings().carriers.name
    rows = {r.carrier: r for r in CarrierStatusRepository(session).all()}
    out = [_out(current, rows.pop(current, None), True)]
    return out + [_out(name, row, False) for name, row in rows.items()]


def health(session: Session) -> CarrierHealth:
    """The configured carrier's state, for anyone (no error text)."""
    current = get_settings().carriers.name
    row = CarrierStatusRepository(session).get(current)
    return CarrierHealth(
        name=current,
        state=row.state if row is not None else UNKNOWN,
        since=row.since if row is not None else None,
    )
