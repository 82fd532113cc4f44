"""All SQL of accounts and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from sales.accounts.models import (
    ApiKey,
    AuditEvent,
    Organisation,
    Role,
    SignInFailure,
    User,
    WebSession,
)


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

    def revoke_keys_of(self, user_id: int, at: datetime) -> int:
        """Every live key of this user revoked; how many."""
        result = self.session.execute(
            update(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def key_by_digest(self, digest: str) -> ApiKey | None:
        return self.session.scalar(
            select(ApiKey).where(ApiKey.digest == digest, ApiKey.revoked_at.is_(None))
        )

    def members(self, organisation_id: int) -> list[User]:
        """The organisation's users, people and key holders alike, oldest first."""
        return list(
            self.session.scalars(
                select(User).where(User.organisation_id == organisation_id).order_by(User.id)
            )
        )

    def keys_of(self, organisation_id: int) -> list[ApiKey]:
        """The organisation's API keys, revoked ones too, newest first."""
        return list(
            self.session.scalars(
                select(ApiKey)
                .join(User, ApiKey.user_id == User.id)
                .where(User.organisation_id == organisation_id)
                .order_by(ApiKey.id.desc())
            )
        )

    def last_sessions(self, user_ids: set[int]) -> dict[int, datetime]:
        """When each user last opened a web session still on record (signing out deletes it)."""
        if not user_ids:
            return {}
        rows = self.session.execute(
            select(WebSession.user_id, func.max(WebSession.created_at))
            .where(WebSession.user_id.in_(user_ids))
            .group_by(WebSession.user_id)
        )
        return {int(user_id): at for user_id, at in rows}

    def headcounts(self) -> dict[int, tuple[int, int]]:
        """Per organisation: people who sign in (an e-mail), and live API keys."""
        people = self.session.execute(
            select(User.organisation_id, func.count())
            .where(User.email.is_not(None))
            .group_by(User.organisation_id)
        )
        keys = self.session.execute(
            select(User.organisation_id, func.count())
            .select_from(ApiKey)
            .join(User, ApiKey.user_id == User.id)
            .where(ApiKey.revoked_at.is_(None))
            .group_by(User.organisation_id)
        )
        out = {int(org): (int(n), 0) for org, n in people}
        for org, n in keys:
            out[int(org)] = (out.get(int(org), (0, 0))[0], int(n))
        return out


class SignInRepository:
    """Users by e-mail, web sessions and failed sign-ins."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def user_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    def add_session(self, web: WebSession) -> None:
        self.session.add(web)
        self.session.flush()

    def live_session(self, digest: str, now: datetime) -> WebSession | None:
        return self.session.scalar(
            select(WebSession).where(WebSession.digest == digest, WebSession.expires_at > now)
        )

    def end_session(self, digest: str) -> None:
        self.session.execute(delete(WebSession).where(WebSession.digest == digest))

    def end_expired_sessions(self, user_id: int, now: datetime) -> None:
        self.session.execute(
            delete(WebSession).where(WebSession.user_id == user_id, WebSession.expires_at <= now)
        )

    def end_other_sessions(self, user_id: int, keep: str) -> None:
        self.session.execute(
            delete(WebSession).where(WebSession.user_id == user_id, WebSession.digest != keep)
        )

    def add_failure(self, email_digest: str, address_digest: str, at: datetime) -> None:
        self.session.add(
            SignInFailure(email_digest=email_digest, address_digest=address_digest, at=at)
        )
        self.session.flush()

    def failures_since(
        self, column: str, digest: str, since: datetime
    ) -> tuple[int, datetime | None]:
        """How many failures for this e-mail or address digest since then, and the oldest."""
        col = getattr(SignInFailure, column)
        row = self.session.execute(
            select(func.count(), func.min(SignInFailure.at)).where(
                col == digest, SignInFailure.at >= since
            )
        ).one()
        return int(row[0] or 0), row[1]

    def forget_failures_before(self, before: datetime) -> None:
        self.session.execute(delete(SignInFailure).where(SignInFailure.at < before))


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
