"""Claiming an Idempotency-Key, and what a request finds when another holds it.

A request first claims (caller, key) by inserting a row in a short transaction of its own: the
unique constraint makes the claim atomic across processes and hosts, on SQLite and PostgreSQL.
The answer is stored in the request's own transaction, with what the request created, by a
compare-and-set on the claim's token: either both are committed or neither is, so a key is
never seen completed without its order, nor an order left without its answer. Services never
commit: the caller owns every transaction here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from sqlalchemy.orm import Session

from kit.settings import get_settings
from sales.idempotency.exceptions import IdempotencyKeyReused, InvalidIdempotencyKey
from sales.idempotency.models import IdempotencyKey, KeyState
from sales.idempotency.repository import IdempotencyRepository

MAX_KEY_LENGTH = 255
KEY_RULE = (
    f"the Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
    "(letters, digits, punctuation, spaces): a random UUID per request is a good choice"
)


@dataclass(frozen=True)
class Attempt:
    """One request that carries a key: who sends it, the key (hashed) and what is asked."""

    scope: str
    key_digest: str
    route: str
    fingerprint: str


@dataclass(frozen=True)
class Claim:
    """The key is ours until the answer is stored or the claim released."""

    row_id: int
    token: str


@dataclass(frozen=True)
class Answer:
    """The stored answer of the first request with this key."""

    status: int
    media_type: str | None
    body: bytes


class Busy:
    """Another request holds the key and has not answered yet."""


BUSY = Busy()


def check_key(key: str) -> None:
    """Refuse a key that is empty, too long or not printable ASCII (never echoing it)."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise InvalidIdempotencyKey(KEY_RULE)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests the same one: route, query and body. A JSON body is compared by
    its content, so a client that serialises it again (another key order, other spacing) is
    still sending the same request."""
    try:
        content = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, RecursionError):
        content = body
    canonical_query = urlencode(sorted(parse_qsl(query, keep_blank_values=True)))
    h = hashlib.sha256()
    for part in (method.upper(), path, canonical_query):
        h.update(part.encode() + b"\0")
    h.update(content)
    return h.hexdigest()


def try_claim(session: Session, attempt: Attempt, now: datetime) -> Claim | Answer | Busy | None:
    """Claim the key, or say what holds it: a stored answer, or a request still running. None
    means the row changed under us: look again. Raises IntegrityError when another request
    inserted the key first (look again too), IdempotencyKeyReused when the key was used for
    another request."""
    settings = get_settings()
    repo = IdempotencyRepository(session)
    token = secrets.token_hex(16)
    row = repo.get(attempt.scope, attempt.key_digest)
    if row is None:
        row = repo.add(
            IdempotencyKey(
                scope=attempt.scope,
                key_digest=attempt.key_digest,
                route=attempt.route,
                fingerprint=attempt.fingerprint,
                token=token,
                state=KeyState.in_progress,
                created_at=now,
            )
        )
        return Claim(row.id, token)
    # A key is remembered for a day: after that it is new again, whatever it was used for.
    if row.created_at <= now - timedelta(hours=settings.idempotency.ttl_hours):
        return _take_over(repo, row, attempt, token, now)
    if row.route != attempt.route:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a request to another route: a new "
            "request needs a new key"
        )
    if row.fingerprint != attempt.fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with another request body or query: a "
            "retry must repeat the first request exactly, and a new request needs a new key"
        )
    if row.state is KeyState.completed:
        # `complete` writes the state, the status and the body together.
        assert row.response_status is not None  # noqa: S101
        assert row.response_body is not None  # noqa: S101
        return Answer(row.response_status, row.response_type, bytes(row.response_body))
    # A request that has held the key this long died (its process was killed) or is stuck: its
    # claim is taken over; if it ever finishes, its answer no longer matches the token and its
    # transaction is rolled back, so only one of the two ever creates anything.
    if row.created_at <= now - timedelta(seconds=settings.idempotency.lease_seconds):
        return _take_over(repo, row, attempt, token, now)
    return BUSY


def _take_over(
    repo: IdempotencyRepository, row: IdempotencyKey, attempt: Attempt, token: str, now: datetime
) -> Claim | None:
    if repo.take_over(row.id, row.token, token, attempt.route, attempt.fingerprint, now):
        return Claim(row.id, token)
    return None


def complete(
    session: Session, claim: Claim, status: int, media_type: str | None, body: bytes, now: datetime
) -> bool:
    """Store the answer in the request's transaction; False when the claim was taken over."""
    return IdempotencyRepository(session).complete(
        claim.row_id, claim.token, status, media_type, body, now
    )


def release(session: Session, claim: Claim) -> None:
    """Forget the claim of a request that has no answer worth keeping (a 5xx, a "retry later"):
    the next request with the key runs again."""
    IdempotencyRepository(session).release(claim.row_id, claim.token)


def purge(session: Session, now: datetime, limit: int = 500) -> int:
    """Delete keys older than their time to live (a batch at a time)."""
    cutoff = now - timedelta(hours=get_settings().idempotency.ttl_hours)
    return IdempotencyRepository(session).purge(cutoff, limit)
