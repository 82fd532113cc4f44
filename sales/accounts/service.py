"""Accounts: organisations, users and their API keys. Services never commit."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from kit import clock
from kit.errors import InvalidInput
from kit.settings import get_settings
from sales.accounts.exceptions import (
    InvalidApiKey,
    KeyNotFound,
    OrganisationExists,
    OrganisationNotFound,
)
from sales.accounts.models import ApiKey, ContentReview, Organisation, Role, User
from sales.accounts.repository import AccountRepository
from sales.accounts.schemas import IssuedKey, Principal, RevokedKey

KEY_PREFIX = "rk_"


def digest(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: no dictionary attack can reach them.
    return hashlib.sha256(key.encode()).hexdigest()


def add_organisation(session: Session, name: str) -> Organisation:
    name = name.strip()
    if not 2 <= len(name) <= 120:
        raise InvalidInput("organisation name must have 2 to 120 characters")
    repo = AccountRepository(session)
    if repo.organisation_by_name(name):
        raise OrganisationExists(f"organisation {name!r} already exists")
    return repo.add_organisation(name, clock.now())


def organisation_for(
    repo: AccountRepository, organisation: str, role: Role, what: str
) -> Organisation:
    """The organisation a new user of `role` joins: staff belong to the broker's (created on
    first use), a client to an existing customer's."""
    broker = get_settings().broker_organisation
    if role is not Role.client and organisation != broker:
        raise InvalidInput(
            f"{role.value} {what} belong to the broker's organisation {broker!r}, not to a "
            f"customer's: use --organisation {broker!r}"
        )
    org = repo.organisation_by_name(organisation)
    if org is None and organisation == broker:
        org = repo.add_organisation(broker, clock.now())
    if org is None:
        raise OrganisationNotFound(
            f"no organisation named {organisation!r}: create it with "
            f"`rental accounts add-organisation {organisation!r}`"
        )
    return org


def add_key(
    session: Session, organisation: str, role: Role, user_name: str | None = None
) -> IssuedKey:
    repo = AccountRepository(session)
    org = organisation_for(repo, organisation, role, "keys")
    now = clock.now()
    name = user_name or f"{role.value}-{repo.count_users(org) + 1}"
    user = repo.add_user(org, name, role, now)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    repo.add_key(user, key[:10], digest(key), now)
    return IssuedKey(key=key, prefix=key[:10], organisation=org.name, role=role, user=name)


def revoke_key(session: Session, key: str) -> RevokedKey:
    """Revoke an API key, given whole or by its first 10 characters (the prefix listings
    show): it is refused from the next request on."""
    key = key.strip()
    if not key.startswith(KEY_PREFIX) or len(key) < 10:
        raise InvalidInput(
            f"give the key, or at least its first 10 characters (it starts with {KEY_PREFIX!r})"
        )
    repo = AccountRepository(session)
    if len(key) > 10:  # a whole key: that one only
        whole = repo.key_by_digest(digest(key))
        keys = [whole] if whole else []
    else:
        keys = repo.live_keys_by_prefix(key)
    if not keys:
        raise KeyNotFound(f"no live API key {key[:10]!r}... (unknown, or revoked already)")
    if len(keys) > 1:
        raise InvalidInput(f"{len(keys)} live keys start with {key[:10]!r}: give the whole key")
    found = keys[0]
    found.revoked_at = clock.now()
    user = found.user
    return RevokedKey(
        prefix=found.prefix, organisation=user.organisation.name, role=user.role, user=user.name
    )


def authenticate(session: Session, key: str | None) -> Principal:
    if not key:
        raise InvalidApiKey("missing API key: send the header 'Authorization: Bearer <key>'")
    found = AccountRepository(session).key_by_digest(digest(key))
    if found is None or found.user.disabled_at is not None:
        raise InvalidApiKey("unknown or revoked API key")
    return principal_of(found.user)


def principal_of(user: User) -> Principal:
    """What a user may do, signed in with a key or a password."""
    org = user.organisation.name
    staff = user.role is not Role.client and org == get_settings().broker_organisation
    # A staff role outside the broker's organisation (a record made before that rule) acts as a
    # client: it never sees other organisations' data.
    return Principal(user.id, user.organisation_id, org, user.role if staff else Role.client)


OPERATOR = "cli-operator"


def operator(session: Session, on_behalf_of: str | None = None) -> Principal:
    """The broker's command-line operator (account manager), acting for an organisation."""
    repo = AccountRepository(session)
    name = get_settings().broker_organisation
    broker = repo.organisation_by_name(name) or repo.add_organisation(name, clock.now())
    user = repo.user_by_name(broker, OPERATOR) or repo.add_user(
        broker, OPERATOR, Role.account_manager, clock.now()
    )
    org = broker
    if on_behalf_of is not None:
        found = repo.organisation_by_name(on_behalf_of)
        if found is None:
            raise OrganisationNotFound(f"no organisation named {on_behalf_of!r}")
        org = found
    return Principal(user.id, org.id, org.name, Role.account_manager)


def organisation_name(session: Session, organisation_id: int) -> str:
    return get_organisation(session, organisation_id).name


def organisations(session: Session) -> list[Organisation]:
    return AccountRepository(session).organisations()


def members(session: Session, organisation_id: int) -> list[User]:
    """An organisation's users: people (with an e-mail) and the holders of its API keys."""
    return AccountRepository(session).members(get_organisation(session, organisation_id).id)


def keys_of(session: Session, organisation_id: int) -> list[ApiKey]:
    """An organisation's API keys (digests and prefixes only), revoked ones too."""
    return AccountRepository(session).keys_of(get_organisation(session, organisation_id).id)


def last_sign_ins(session: Session, user_ids: set[int]) -> dict[int, datetime]:
    """The last web session each user opened, when one is still on record."""
    return AccountRepository(session).last_sessions(user_ids)


def headcounts(session: Session) -> dict[int, tuple[int, int]]:
    """Per organisation id: how many people sign in, how many API keys are live."""
    return AccountRepository(session).headcounts()


def get_organisation(session: Session, organisation_id: int) -> Organisation:
    org = AccountRepository(session).organisation(organisation_id)
    if org is None:
        raise OrganisationNotFound("no such organisation")
    return org


def set_terms(
    session: Session,
    organisation_id: int,
    content_review: ContentReview | None,
    refund_deposit_on_cancel: bool | None,
    billing: dict[str, str | None] | None = None,
) -> Organisation:
    """Contract terms and billing identity; what is None stays as it is."""
    org = get_organisation(session, organisation_id)
    for field, value in (billing or {}).items():
        if field in ("billing_address", "vat_number", "siren") and value is not None:
            setattr(org, field, value)
    if content_review is not None:
        org.content_review = content_review
    if refund_deposit_on_cancel is not None:
        org.refund_deposit_on_cancel = refund_deposit_on_cancel
    session.flush()
    return org
