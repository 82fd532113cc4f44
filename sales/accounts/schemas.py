from __future__ import annotations

from dataclasses import dataclass

from sales.accounts.models import Role


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: int
    organisation_id: int
    organisation: str
    role: Role

    @property
    def is_staff(self) -> bool:
        """Account managers and admins work across organisations."""
        return self.role in (Role.account_manager, Role.admin)

    def scope(self, requested: int | None = None) -> int | None:
        """The organisation a lookup is restricted to: none for staff (or the one they ask
        for), always the caller's own for a client, whatever it asks."""
        return requested if self.is_staff else self.organisation_id


@dataclass(frozen=True)
class IssuedKey:
    key: str  # shown once, never stored
    prefix: str
    organisation: str
    role: Role
    user: str


@dataclass(frozen=True)
class RevokedKey:
    prefix: str
    organisation: str
    role: Role
    user: str
