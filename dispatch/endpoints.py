"""HTTP intake: carriers' delivery receipts and replies, and the STOP link page."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

from dispatch import intake, service
from dispatch.carriers.base import Receipt, Reply
from dispatch.exceptions import CarrierNotFound, CarrierSecretRequired
from dispatch.schemas import CarrierStatusOut
from dispatch.states import FINAL, RecipientStatus
from kit import clock, keys
from kit import http_errors as errors
from kit.settings import get_settings
from kit.text import SafeText
from sales.accounts.deps import SessionDep, StaffDep
from sales.messages.service import STOP_TOKEN_LENGTH

router = APIRouter(tags=["carriers"])
stop_router = APIRouter(tags=["opt-out"])
CarrierName = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,30}$")]
# A receipt says one of the final states (in their declared order: the schema stays stable).
RECEIPT_STATUS = "^({})$".format("|".join(s.value for s in RecipientStatus if s in FINAL))
# The carriers' own security scheme in the document; a missing secret is our own 401 (_check).
_carrier_secret = APIKeyHeader(
    name="X-Carrier-Secret",
    scheme_name="CarrierSecret",
    description="The secret an operator gave this carrier (`rental carriers secret NAME`)",
    auto_error=False,
)
CarrierSecret = Annotated[str | None, Depends(_carrier_secret)]


class ReceiptIn(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"message_id": "sim-4f2a9c", "status": "delivered"}]},
    )
    message_id: SafeText = Field(max_length=64)
    status: str = Field(pattern=RECEIPT_STATUS)
    error: SafeText | None = Field(default=None, max_length=40)


class ReplyIn(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"text": "STOP", "message_id": "sim-4f2a9c"}]},
    )
    text: SafeText = Field(max_length=1000)
    message_id: SafeText | None = Field(default=None, max_length=64)
    number: SafeText | None = Field(default=None, max_length=20, description="the replier")


def _check(carrier: str, secret: str | None) -> None:
    """The caller is the carrier it names. A carrier is known when it is the configured one
    (RENTAL_CARRIER) or has a secret (RENTAL_CARRIER_SECRETS, or one an operator issued with
    `rental carriers secret NAME`); anything else is not found, and nothing is created. The
    name is never repeated back: it is whatever the caller typed."""
    expected = keys.carrier_secret(carrier)
    if expected is None and carrier != get_settings().carriers.name:
        raise CarrierNotFound(
            "no such carrier: receipts and replies are taken from the configured carrier and "
            "from carriers an operator gave a secret to"
        )
    # Compared as bytes: a header may hold any character, and compare_digest takes only
    # ASCII text.
    if (
        expected is None
        or not secret
        or not hmac.compare_digest(secret.encode("utf-8", "replace"), expected.encode())
    ):
        raise CarrierSecretRequired(
            "missing or wrong X-Carrier-Secret header: send the secret the operator gave "
            "this carrier"
        )


@router.post(
    "/carriers/{carrier}/receipts",
    summary="Delivery receipts from a carrier",
    responses=errors.responses(415),
)
def record_carrier_receipts(
    carrier: CarrierName,
    body: list[ReceiptIn],
    session: SessionDep,
    x_carrier_secret: CarrierSecret,
) -> dict[str, int]:
    _check(carrier, x_carrier_secret)
    changed = intake.apply_receipts(
        session, [Receipt(r.message_id, r.status, r.error) for r in body], clock.now()
    )
    return {"received": len(body), "applied": changed}


@router.post(
    "/carriers/{carrier}/replies",
    summary="Replies (STOP...) from a carrier",
    responses=errors.responses(415),
)
def record_carrier_replies(
    carrier: CarrierName,
    body: list[ReplyIn],
    session: SessionDep,
    x_carrier_secret: CarrierSecret,
) -> dict[str, int]:
    _check(carrier, x_carrier_secret)
    added = intake.apply_replies(
        session, [Reply(r.text, r.message_id, r.number) for r in body], carrier, clock.now()
    )
    return {"received": len(body), "opted_out": added}


@router.get(
    "/carriers/status",
    response_model=list[CarrierStatusOut],
    summary="Each carrier's state, last error and last success (account managers)",
    responses=errors.responses(403),
)
def list_carrier_statuses(session: SessionDep, _: StaffDep) -> list[CarrierStatusOut]:
    """What the dispatch workers last saw of each carrier: a carrier `unavailable` holds up
    the orders sending through it (they wait and retry), and its last error says why."""
    return service.statuses(session)


PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto;"><h1>{title}</h1>
<p>{body}</p></body></html>"""
# A link mistyped by a few characters still gets the page that says how to opt out; anything
# much longer than a token is refused before any lookup.
STOP_PATH_MAX = 2 * STOP_TOKEN_LENGTH


@stop_router.get("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
def stop_link(
    token: Annotated[str, Path(max_length=STOP_PATH_MAX)], session: SessionDep
) -> HTMLResponse:
    """A personal STOP link: the visit itself opts out (the token carries no number)."""
    if token.isalnum() and intake.stop_link(session, token, clock.now()):
        return HTMLResponse(
            PAGE.format(
                title="Désinscription confirmée / Unsubscribed",
                body="Vous ne recevrez plus de SMS de nos partenaires. "
                "You will not receive our partners' text messages any more.",
            )
        )
    return HTMLResponse(
        PAGE.format(
            title="Lien inconnu / Unknown link",
            body="Ce lien n'est pas valide. Envoyez STOP par SMS pour vous désinscrire. "
            "This link is not valid: reply STOP to unsubscribe.",
        ),
        status_code=404,
    )
