from __future__ import annotations

from dataclasses import dataclass

from rental.accounts.models import Role


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


@dataclass(frozen=True)
class IssuedKey:
    key: str  # shown once, never stored
    prefix: str
    organisation: str
    role: Role
    user: str
