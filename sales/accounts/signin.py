"""People who sign in to the web app: e-mail and password (argon2id), sessions, the throttle.

API keys stay for programs (sales/accounts/service.py); both lead to the same `Principal`.
Services never commit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from kit import clock
from kit.errors import InvalidInput
from sales.accounts.exceptions import (
    CannotDisableSelf,
    EmailTaken,
    SignInFailed,
    SignInThrottled,
    UserNotFound,
    WeakPassword,
)
from sales.accounts.models import Role, User, WebSession
from sales.accounts.repository import AccountRepository, AuditRepository, SignInRepository
from sales.accounts.schemas import Principal
from sales.accounts.service import digest, organisation_for, principal_of

SESSION_LIFETIME = timedelta(hours=8)  # a working day; then sign in again
THROTTLE_WINDOW = timedelta(minutes=15)
FAILURES_PER_EMAIL = 5  # then that e-mail is refused for the rest of the window
FAILURES_PER_ADDRESS = 20  # one address trying many e-mails
MIN_PASSWORD, MAX_PASSWORD = 12, 256  # the maximum bounds the hashing work a request can ask
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")

# argon2id with the library's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes).
_hasher = PasswordHasher()


@cache
def _decoy() -> str:
    """A hash to verify against when the e-mail is unknown: the answer takes as long as for a
    known one, so its timing does not tell which e-mails have an account."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class NewUser:
    email: str
    organisation: str
    role: Role
    one_time_password: str | None  # printed once when no password was given


@dataclass(frozen=True)
class SignedIn:
    token: str  # goes into the cookie only; the database keeps its digest
    expires_at: datetime
    must_change_password: bool


@dataclass(frozen=True)
class WebUser:
    """The person behind a live web session."""

    principal: Principal
    email: str
    csrf_token: str
    must_change_password: bool
    session_digest: str


def normalise_email(text: str) -> str:
    email = text.strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise InvalidInput("give an e-mail address such as name@example.com")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"the password may have at most {MAX_PASSWORD} characters")


def add_user(
    session: Session, organisation: str, role: Role, email: str, password: str | None
) -> NewUser:
    """A person who can sign in. Without a password, a one-time one is made: it must be
    changed at the first sign-in."""
    email = normalise_email(email)
    if password is not None:
        check_password(password)
    repo = AccountRepository(session)
    org = organisation_for(repo, organisation, role, "users")
    if SignInRepository(session).user_by_email(email) is not None:
        raise EmailTaken(f"a user with the e-mail {email!r} exists already")
    user = repo.add_user(org, email[:120], role, clock.now())
    one_time = secrets.token_urlsafe(12) if password is None else None
    user.email = email
    user.password_hash = _hasher.hash(password if password is not None else str(one_time))
    user.password_must_change = password is None
    session.flush()
    return NewUser(email, org.name, role, one_time)


def reset_password(session: Session, email: str, password: str) -> None:
    """An operator's reset (`rental up` gives its demo people fresh passwords each start): the
    person's sessions end."""
    user = SignInRepository(session).user_by_email(normalise_email(email))
    if user is None:
        raise InvalidInput(f"no user has the e-mail {email!r}")
    check_password(password)
    user.password_hash = _hasher.hash(password)
    user.password_must_change = False
    SignInRepository(session).end_other_sessions(user.id, keep="")  # no digest is empty: all end
    session.flush()


def _address_digest(address: str) -> str:
    return hashlib.sha256(b"address:" + address.encode()).hexdigest()


def _email_digest(email: str) -> str:
    return hashlib.sha256(b"email:" + email.encode()).hexdigest()


def _throttle(
    repo: SignInRepository, email_digest: str, address_digest: str, now: datetime
) -> None:
    """Refuse before any password is checked once either count of recent failures is full."""
    since = now - THROTTLE_WINDOW
    for column, key, limit in (
        ("email_digest", email_digest, FAILURES_PER_EMAIL),
        ("address_digest", address_digest, FAILURES_PER_ADDRESS),
    ):
        failures, oldest = repo.failures_since(column, key, since)
        if failures >= limit and oldest is not None:
            wait = int((oldest + THROTTLE_WINDOW - now).total_seconds()) + 1
            raise SignInThrottled(
                f"too many failed sign-ins: try again in {max(1, (wait + 59) // 60)} minute(s)",
                retry_after_seconds=max(1, wait),
            )


def verify(session: Session, email: str, password: str, address: str, now: datetime) -> User:
    """The user whose e-mail and password these are; SignInFailed (recorded for the throttle)
    otherwise, SignInThrottled after too many failures."""
    repo = SignInRepository(session)
    try:
        email = normalise_email(email)
    except InvalidInput:
        email = email.strip().lower()[:254]
    email_key, address_key = _email_digest(email), _address_digest(address)
    _throttle(repo, email_key, address_key, now)
    user = repo.user_by_email(email)
    stored = user.password_hash if user is not None and user.password_hash else _decoy()
    try:
        ok = 0 < len(password) <= MAX_PASSWORD and _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or user.disabled_at is not None:  # disabled: said the same way
        repo.forget_failures_before(now - THROTTLE_WINDOW)
        repo.add_failure(email_key, address_key, now)
        raise SignInFailed("wrong e-mail or password")
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    return user


def open_session(session: Session, user: User, now: datetime) -> SignedIn:
    repo = SignInRepository(session)
    repo.end_expired_sessions(user.id, now)
    token = secrets.token_urlsafe(32)
    expires = now + SESSION_LIFETIME
    repo.add_session(
        WebSession(
            digest=digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=expires,
        )
    )
    return SignedIn(token, expires, user.password_must_change)


def sign_in(session: Session, email: str, password: str, address: str) -> SignedIn:
    """Check the password and open a session. The failure of a wrong password must be
    committed by the caller (it counts for the throttle) even though it raises."""
    now = clock.now()
    return open_session(session, verify(session, email, password, address, now), now)


def current(session: Session, token: str | None) -> WebUser | None:
    """The person of a session cookie, None when it is missing, unknown or expired."""
    if not token or len(token) > 100:
        return None
    found = SignInRepository(session).live_session(digest(token), clock.now())
    if found is None:
        return None
    user = found.user
    if user.disabled_at is not None:  # its sessions ended when it was disabled; a last guard
        return None
    return WebUser(
        principal_of(user),
        user.email or "",
        found.csrf_token,
        user.password_must_change,
        found.digest,
    )


def sign_out(session: Session, token: str | None) -> None:
    if token and len(token) <= 100:
        SignInRepository(session).end_session(digest(token))


def change_password(session: Session, who: WebUser, current_password: str, new: str) -> None:
    """A new password, given the current one (the one-time one after `add-user`); the
    user's other sessions end."""
    user = AccountRepository(session).users({who.principal.user_id})[who.principal.user_id]
    try:
        ok = user.password_hash is not None and _hasher.verify(
            user.password_hash, current_password[:MAX_PASSWORD]
        )
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        raise SignInFailed("the current password is wrong")
    check_password(new)
    if new == current_password:
        raise WeakPassword("choose a password other than the current one")
    user.password_hash = _hasher.hash(new)
    user.password_must_change = False
    SignInRepository(session).end_other_sessions(user.id, who.session_digest)
    session.flush()


@dataclass(frozen=True)
class AccountState:
    email: str
    organisation: str
    disabled_at: datetime | None
    keys_revoked: int  # the person's live API keys revoked with it


def set_disabled(
    session: Session, email: str, disabled: bool, by: Principal | None = None
) -> AccountState:
    """Disable a person's account (a leaver): the sign-in is refused as a wrong password would
    be, every session ends and every live API key of theirs is revoked, at once. Enabling it
    again lets them sign in; revoked keys stay revoked. Recorded in the audit trail, with
    `by` (None: the command-line operator)."""
    user = SignInRepository(session).user_by_email(normalise_email(email))
    if user is None:
        raise UserNotFound("no person signs in with this e-mail: check it, or list the people")
    if by is not None and by.user_id == user.id and disabled:
        raise CannotDisableSelf("you cannot disable your own account: ask another colleague")
    now = clock.now()
    revoked = 0
    if disabled:
        user.disabled_at = user.disabled_at or now
        SignInRepository(session).end_other_sessions(user.id, keep="")
        revoked = AccountRepository(session).revoke_keys_of(user.id, now)
    else:
        user.disabled_at = None
    action = "user.disabled" if disabled else "user.enabled"
    details: dict[str, object] = {"email": user.email or "", "keys_revoked": revoked}
    AuditRepository(session).record(
        now,
        by.user_id if by is not None else None,
        user.organisation_id,
        action,
        str(user.organisation_id),
        details,
    )
    session.flush()
    return AccountState(user.email or "", user.organisation.name, user.disabled_at, revoked)
