"""The rules of the rights requests. Services never commit: the request or task owns the
transaction.

Before a code is verified nothing here reads the base: asking a code does the same work for
any valid number (normalise, HMAC, rate limits, one row), and the worker decides later, off
the request path, whether a code goes out (flows.send_codes). So the answer, its status and
its timing cannot say whether a number is in the base.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy.orm import Session

from datasets import snapshot
from datasets.erasures import ErasureRepository
from datasets.vault import NATIONAL_REGIONS, hmac_number, normalise_e164
from kit import keys
from kit.settings import RightsSettings, get_settings
from segmentation.repository import SuppressionRepository
from subjects import repository
from subjects.exceptions import (
    AccessRequired,
    NotAMobileNumber,
    RequestClosed,
    RequestNotFound,
    TooManyCodes,
)
from subjects.models import (
    Challenge,
    ChallengeStatus,
    RequestKind,
    RequestStatus,
    SubjectRequest,
)
from subjects.schemas import Campaign, Consent, Record, RequestOut, StaffRequest

REGIONS = NATIONAL_REGIONS  # national formats a person may type, or a reply come in
MOBILE = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
ASKED = (
    "Si ce numéro figure dans notre base, un code vient de lui être envoyé par SMS. "
    "If this number is in our base, a code was sent to it by SMS."
)
HOUR = timedelta(hours=1)


def _mac(purpose: bytes, value: bytes) -> bytes:
    """A keyed hash for one purpose (codes, addresses): a stolen table cannot be reversed by
    trying every value without the key."""
    return hmac.digest(keys.hmac_key(), purpose + b"|" + value, "sha256")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def number_hmac(number: str) -> bytes:
    """The opt-out HMAC of a typed mobile number; the number is never repeated in an error."""
    candidates = [number] if number.strip().startswith("+") else [number] * len(REGIONS)
    for candidate, region in zip(candidates, REGIONS, strict=False):
        try:
            e164 = normalise_e164(candidate, region)
        except (ValueError, phonenumbers.NumberParseException):
            continue
        if phonenumbers.number_type(phonenumbers.parse(e164)) in MOBILE:
            return hmac_number(keys.hmac_key(), e164)
    raise NotAMobileNumber(
        "this is not a French mobile number: type its ten digits, 06 or 07 then eight more, "
        "or with its country code, +33 then nine digits (overseas: +262, +590, +594, +596)"
    )


def code_hash(token_hash: bytes, code: str) -> bytes:
    return _mac(b"code", token_hash + code.encode())


def _limit(n: int, oldest: datetime | None, most: int, now: datetime, what: str) -> None:
    if n >= most:
        wait = max(1, int(((oldest or now) + HOUR - now).total_seconds()) + 1)
        raise TooManyCodes(
            f"too many codes asked {what} in the last hour: try again in {wait} s",
            retry_after_seconds=wait,
        )


def ask_code(session: Session, number: str, address: str, now: datetime) -> tuple[str, datetime]:
    """Record a code request for `number` (the worker sends the code if the number is in the
    base); returns (the challenge token, when it expires)."""
    rules = get_settings().rights
    mac = number_hmac(number)
    address_mac = _mac(b"address", address.encode())
    challenges = repository.ChallengeRepository(session)
    n, oldest = challenges.count_since(address_mac=address_mac, since=now - HOUR)
    _limit(n, oldest, rules.per_address_hourly, now, "from this address")
    n, oldest = challenges.count_since(phone_hmac=mac, since=now - HOUR)
    _limit(n, oldest, rules.per_number_hourly, now, "for this number")
    token = secrets.token_urlsafe(24)
    expires = now + timedelta(minutes=rules.code_ttl_minutes)
    challenges.add(
        Challenge(
            token_hash=_digest(token),
            phone_hmac=mac,
            address_mac=address_mac,
            status=ChallengeStatus.pending,
            attempts=0,
            created_at=now,
            expires_at=expires,
        )
    )
    return token, expires


@dataclass(frozen=True)
class Verified:
    access: str | None  # None: wrong code
    until: datetime | None
    attempts_left: int


def verify(session: Session, token: str, code: str, now: datetime) -> Verified:
    """Check a code. Every attempt counts (the caller commits even a wrong one); after
    `code_attempts` wrong ones the challenge is spent."""
    rules = get_settings().rights
    challenge = repository.ChallengeRepository(session).by_token(_digest(token))
    if (
        challenge is None
        or challenge.expires_at <= now
        or challenge.status
        in (
            ChallengeStatus.spent,
            ChallengeStatus.verified,
        )
    ):
        return Verified(None, None, 0)
    challenge.attempts += 1
    right = challenge.code_hash is not None and hmac.compare_digest(
        challenge.code_hash, code_hash(challenge.token_hash, code)
    )
    if not right:
        left = rules.code_attempts - challenge.attempts
        if left <= 0:
            challenge.status = ChallengeStatus.spent
        return Verified(None, None, max(left, 0))
    access = secrets.token_urlsafe(32)
    challenge.status = ChallengeStatus.verified
    challenge.access_hash = _digest(access)
    challenge.access_until = now + timedelta(minutes=rules.access_minutes)
    return Verified(access, challenge.access_until, rules.code_attempts - challenge.attempts)


def holder(session: Session, access: str | None, now: datetime) -> bytes:
    """The number's HMAC a verified access opens."""
    found = repository.ChallengeRepository(session).by_access(_digest(access)) if access else None
    if found is None or found.access_until is None or found.access_until <= now:
        raise AccessRequired(
            "prove the number first: ask a code, then send it back; the access lasts "
            f"{get_settings().rights.access_minutes} minutes"
        )
    return found.phone_hmac


def _attributes(row: dict[str, Any], interests: list[str]) -> dict[str, Any]:
    """The targeting attributes of a base row, as the person can read them."""
    mask = int(row.get("interests") or 0)
    shown: dict[str, Any] = {
        k: (v.isoformat() if isinstance(v, date) else v)
        for k, v in row.items()
        if k
        in (
            "sex",
            "birth_date",
            "csp",
            "region",
            "department",
            "commune",
            "postcode",
            "housing",
            "dwelling",
            "children",
            "income",
        )
    }
    shown["interests"] = [name for i, name in enumerate(interests) if mask & (1 << i)]
    return shown


def request_out(r: SubjectRequest) -> RequestOut:
    return RequestOut(
        id=r.id,
        kind=r.kind,
        status=r.status,
        created_at=r.created_at,
        due_at=r.due_at,
        closed_at=r.closed_at,
        answer=r.answer,
    )


def record(session: Session, mac: bytes, now: datetime) -> Record:
    """Everything the broker holds about the number (art. 15): its base row, consent and its
    proof, the campaigns it received, its opt-out, erasure and requests."""
    snap = snapshot.current(get_settings().base_dir)
    row = repository.prospect_of(snap, mac)
    erasure = ErasureRepository(session).state(mac)
    shown = Record(
        in_base=row is not None,
        campaigns=[Campaign(sender=s, sent_at=t) for s, t in repository.campaigns(session, mac)],
        opted_out=SuppressionRepository(session).contains(mac),
        erasure="none" if erasure is None else ("done" if erasure.erased_in else "pending"),
        requests=[request_out(r) for r in repository.RequestRepository(session).of_number(mac)],
    )
    if row is not None:
        shown.attributes = _attributes(row, list(snap.manifest.get("interests", [])))
        shown.consent = Consent(
            opt_in=bool(row["opt_in"]),
            source=str(row["consent_source"]),
            date=row["consent_date"],
            proof_ref=str(row["proof_ref"]),
            last_interaction=row["last_interaction"],
        )
    return shown


def _done(session: Session, mac: bytes, kind: RequestKind, now: datetime) -> SubjectRequest:
    """A request answered at once, with its audit row."""
    requests = repository.RequestRepository(session)
    made = requests.add(
        SubjectRequest(
            phone_hmac=mac,
            kind=kind,
            status=RequestStatus.done,
            created_at=now,
            due_at=now,
            closed_at=now,
        )
    )
    requests.act(made.id, now, "subject", kind.value)
    return made


def object_to_prospecting(session: Session, mac: bytes, now: datetime) -> SubjectRequest:
    """Art. 21: the number goes on the suppression list, as a STOP does; final."""
    SuppressionRepository(session).add(mac, "objection", "rights page", now)
    return _done(session, mac, RequestKind.objection, now)


def erase(session: Session, mac: bytes, now: datetime) -> SubjectRequest:
    """Art. 17: out of the rentable base at once (suppressed), the record dropped at the next
    base refresh; the opt-out HMAC stays so that a later import cannot bring them back."""
    SuppressionRepository(session).add(mac, "erasure", "rights page", now)
    ErasureRepository(session).request(mac, now)
    return _done(session, mac, RequestKind.erasure, now)


def _due(at: datetime, rules: RightsSettings) -> datetime:
    return at + timedelta(days=rules.deadline_days)


def ask_human(
    session: Session,
    mac: bytes | None,
    kind: RequestKind,
    message: str,
    now: datetime,
    actor: str = "subject",
) -> SubjectRequest:
    """A request staff answer (rectification, a written request), due in one month."""
    requests = repository.RequestRepository(session)
    made = requests.add(
        SubjectRequest(
            phone_hmac=mac,
            kind=kind,
            status=RequestStatus.open,
            message=message,
            created_at=now,
            due_at=_due(now, get_settings().rights),
        )
    )
    requests.act(made.id, now, actor, "received")
    return made


def staff_view(r: SubjectRequest, now: datetime) -> StaffRequest:
    left = (r.due_at - now).total_seconds() / 86400
    return StaffRequest(
        **request_out(r).model_dump(),
        overdue=r.status == RequestStatus.open and left < 0,
        days_left=int(left // 1),
        message=r.message,
    )


def queue(session: Session, now: datetime, status: str | None = None) -> list[StaffRequest]:
    """Requests for staff, the nearest deadline first."""
    return [staff_view(r, now) for r in repository.RequestRepository(session).queue(status)]


def answer(session: Session, request_id: int, staff: str, text: str, now: datetime) -> StaffRequest:
    """Staff close a request with their answer (sent to the person by the usual channel)."""
    requests = repository.RequestRepository(session)
    found = requests.get(request_id)
    if found is None:
        raise RequestNotFound(f"no rights request {request_id}: see GET /v1/rights/requests")
    if found.status != RequestStatus.open:
        raise RequestClosed(f"request {request_id} is already {found.status}")
    found.status, found.answer, found.closed_at = RequestStatus.closed, text, now
    requests.act(found.id, now, staff, "answered")
    return staff_view(found, now)


def remind(session: Session, now: datetime) -> list[int]:
    """Open requests whose deadline is within `reminder_days`: marked reminded (once), with
    an audit row; returns their ids for the log line (never their content)."""
    rules = get_settings().rights
    requests = repository.RequestRepository(session)
    due = requests.to_remind(now + timedelta(days=rules.reminder_days))
    for r in due:
        r.reminded_at = now
        requests.act(r.id, now, "worker", "reminded")
    return [r.id for r in due]


def forget_challenges(session: Session, now: datetime) -> int:
    """Delete the one-time code rows older than `challenge_days` (hashes only, but no reason
    to keep them once no limit, code or access can use them); returns how many."""
    days = get_settings().rights.challenge_days
    return repository.ChallengeRepository(session).forget_before(now - timedelta(days=days))
