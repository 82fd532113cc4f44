"""All SQL of accounts and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sales.accounts.models import ApiKey, AuditEvent, Organisation, Role, User


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def organisation_by_name(self, name: str) -> Organisation | None:
        return self.session.scalar(select(Organisation).where(Organisation.name == name))

    def organisation(self, organisation_id: int) -> Organisation | None:
        return self.session.get(Organisation, organisation_id)

    def organisations(self) -> list[Organisation]:
        return list(self.session.scalars(select(Organisation).order_by(Organisation.name)))

    def users(self, ids: set[int]) -> dict[int, User]:
        if not ids:
            return {}
        return {u.id: u for u in self.session.scalars(select(User).where(User.id.in_(ids)))}

    def add_organisation(self, name: str, at: datetime) -> Organisation:
        org = Organisation(name=name, created_at=at)
        self.session.add(org)
        self.session.flush()
        return org

    def add_user(self, org: Organisation, name: str, role: Role, at: datetime) -> User:
        user = User(organisation_id=org.id, name=name, role=role, created_at=at)
        self.session.add(user)
        self.session.flush()
        return user

    def count_users(self, org: Organisation) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(User).where(User.organisation_id == org.id)
            )
            or 0
        )

    def user_by_name(self, org: Organisation, name: str) -> User | None:
        return self.session.scalar(
            select(User).where(User.organisation_id == org.id, User.name == name)
        )

    def add_key(self, user: User, prefix: str, digest: str, at: datetime) -> ApiKey:
        key = ApiKey(user_id=user.id, prefix=prefix, digest=digest, created_at=at)
        self.session.add(key)
        self.session.flush()
        return key

    def live_keys_by_prefix(self, prefix: str) -> list[ApiKey]:
        return list(
            self.session.scalars(
                select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
            )
        )

    def key_by_digest(self, digest: str) -> ApiKey | None:
        return self.session.scalar(
            select(ApiKey).where(ApiKey.digest == digest, ApiKey.revoked_at.is_(None))
        )


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        at: datetime,
        user_id: int | None,
        organisation_id: int | None,
        action: str,
        subject: str | None,
        details: dict[str, Any],
    ) -> None:
        self.session.add(
            AuditEvent(
                at=at,
                user_id=user_id,
                organisation_id=organisation_id,
                action=action,
                subject=subject,
                details=details,
            )
        )

    def count_since(self, organisation_id: int, action: str, since: datetime) -> int:
        q = (
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.organisation_id == organisation_id,
                AuditEvent.action == action,
                AuditEvent.at >= since,
            )
        )
        return int(self.session.scalar(q) or 0)
