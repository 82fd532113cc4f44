"""The public rights page (GDPR art. 15-21): a person proves their number with a code sent by
SMS, then sees what the broker holds and objects, asks for erasure or writes to staff. The
same services as /v1/rights; no account. Before the code nothing says whether the number is in
the base (subjects/service.py)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from datasets import reference
from kit import clock
from kit.db import unit_of_work
from kit.errors import RentalError
from segmentation import criteria
from subjects import service
from subjects.exceptions import AccessRequired, TooManyCodes
from subjects.models import RequestKind
from subjects.schemas import Record
from web import i18n
from web.i18n import N_, Words
from web.i18n import gettext as _
from web.security import CSRF_FIELD, clear_cookie, field, new_token, same_token, set_cookie
from web.session import FormDep
from web.staff.words import day
from web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = "/droits"
RECORD = "/droits/dossier"
FORM_COOKIE = "rental_rights_form"  # the forms' CSRF token (double submit: no session)
ACCESS_COOKIE = "rental_rights_access"  # what a verified code opens, for 30 minutes
DONE = Words(
    {
        "opposition": N_(
            "C'est noté : vous ne recevrez plus aucun message de nos partenaires. "
            "Ce choix est définitif."
        ),
        "effacement": N_(
            "C'est noté : vous ne faites plus partie des fichiers loués dès maintenant ; "
            "votre fiche sera supprimée lors de la prochaine mise à jour de la base. Votre "
            "opposition reste enregistrée, pour qu'un nouvel import ne vous y remette pas."
        ),
        "demande": N_(
            "Votre demande est transmise à notre équipe, qui vous répondra dans un délai d'un mois."
        ),
    }
)


# The record's attributes under the names of the criteria catalogue (the segment builder's).
CRITERION = {"region": "regions", "department": "departments"}
OWN_LABELS = {
    "birth_date": N_("Date de naissance"),
    "commune": N_("Commune (code INSEE)"),
    "postcode": N_("Code postal"),
    "region": N_("Région"),
    "department": N_("Département"),
}


def readable(record: Record) -> tuple[list[tuple[str, str]], str]:
    """The attributes as (label, value) in the reader's language, and the consent source's
    label."""
    suffix = "label_en" if i18n.current() == "en" else "label_fr"
    entries = {c["key"]: c for c in criteria.catalogue()["criteria"]}
    rows: list[tuple[str, str]] = []
    for name, value in record.attributes.items():
        entry = entries.get(CRITERION.get(name, name))
        labels = {v["value"]: v[suffix] for v in (entry or {}).get("values", [])}
        if isinstance(value, list):
            shown = ", ".join(labels.get(v, v) for v in value) or "–"
        elif isinstance(value, bool):
            shown = _("oui") if value else _("non")
        elif name == "birth_date" and value:
            shown = day(value if isinstance(value, date) else date.fromisoformat(str(value)))
        else:
            shown = labels.get(str(value), str(value)) if value is not None else "–"
        label = _(OWN_LABELS.get(name, name)) if name in OWN_LABELS or not entry else entry[suffix]
        rows.append((label, shown))
    sources = reference.consent_sources()
    source = record.consent.source if record.consent else ""
    found = sources.filter(sources["code"] == source)
    return rows, (str(found[suffix][0]) if found.height else source)


def _page(
    request: Request,
    name: str,
    context: dict[str, object],
    status: int = 200,
    retry_after: int | None = None,
) -> Response:
    """A page whose forms carry a fresh CSRF token, also set in a cookie."""
    token = new_token()
    response = render(request, name, {"user": None, "csrf": token, **context}, status)
    set_cookie(response, request, FORM_COOKIE, token, clock.now() + timedelta(hours=1))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _csrf_ok(request: Request, fields: dict[str, list[str]]) -> bool:
    return same_token(request.cookies.get(FORM_COOKIE), field(fields, CSRF_FIELD))


def _expired(request: Request) -> Response:
    errors = {"form": _("Ce formulaire a expiré : saisissez à nouveau votre numéro.")}
    return _page(request, "rights.html", {"step": "number", "errors": errors}, 403)


@router.get(PAGE)
def rights_page(request: Request) -> Response:
    return _page(request, "rights.html", {"step": "number", "errors": {}})


@router.post(PAGE + "/code")
def ask_code(request: Request, fields: FormDep) -> Response:
    if not _csrf_ok(request, fields):
        return _expired(request)
    number = field(fields, "number")[:24]
    address = request.client.host if request.client else "unknown"
    refused: RentalError | None = None
    with unit_of_work() as session:
        try:
            token, _expires = service.ask_code(session, number, address, clock.now())
        except RentalError as exc:
            refused = exc
    if isinstance(refused, TooManyCodes):
        wait = int(refused.extra.get("retry_after_seconds", 3600))
        minutes = max(1, (wait + 59) // 60)
        text = _("Trop de codes demandés. Réessayez dans %(num)s minutes.") % {"num": minutes}
        return _page(
            request, "rights.html", {"step": "number", "errors": {"form": text}}, 429, wait
        )
    if refused is not None:
        text = _("Saisissez un numéro de mobile français, par exemple 06 suivi de huit chiffres.")
        return _page(request, "rights.html", {"step": "number", "errors": {"number": text}}, 422)
    return _page(request, "rights.html", {"step": "code", "challenge": token, "errors": {}})


@router.post(PAGE + "/verification")
def verify_code(request: Request, fields: FormDep) -> Response:
    if not _csrf_ok(request, fields):
        return _expired(request)
    challenge, code = field(fields, "challenge")[:64], field(fields, "code").strip()[:6]
    with unit_of_work() as session:  # a wrong code is committed too: attempts count
        outcome = (
            service.verify(session, challenge, code, clock.now())
            if code.isdigit() and len(code) == 6 and len(challenge) >= 20
            else None
        )
    if outcome is None or outcome.access is None or outcome.until is None:
        text = _("Code incorrect ou expiré. Vérifiez le SMS, ou demandez un nouveau code.")
        context: dict[str, object] = {
            "step": "code",
            "challenge": challenge,
            "errors": {"code": text},
        }
        return _page(request, "rights.html", context, 422)
    response = RedirectResponse(RECORD, status_code=303)
    set_cookie(response, request, ACCESS_COOKIE, outcome.access, outcome.until)
    return response


@router.get(RECORD)
def record_page(request: Request) -> Response:
    with unit_of_work() as session:
        try:
            mac = service.holder(session, request.cookies.get(ACCESS_COOKIE), clock.now())
        except AccessRequired:
            return RedirectResponse(PAGE, status_code=303)
        shown = service.record(session, mac, clock.now())
    done = DONE.get(request.query_params.get("fait", ""))
    return _record_page(request, shown, done, {})


def _record_page(
    request: Request, shown: Record, done: str | None, errors: dict[str, str], status: int = 200
) -> Response:
    rows, source = readable(shown)
    context = {
        "record": shown,
        "rows": rows,
        "source": source,
        "done": done,
        "errors": errors,
        "day": day,
    }
    return _page(request, "rights_record.html", context, status)


@router.post(RECORD + "/{action}")
def act(request: Request, action: str, fields: FormDep) -> Response:
    if not _csrf_ok(request, fields) or action not in DONE:
        return RedirectResponse(RECORD, status_code=303)
    message = field(fields, "message").strip()[:2000]
    with unit_of_work() as session:
        try:
            mac = service.holder(session, request.cookies.get(ACCESS_COOKIE), clock.now())
        except AccessRequired:
            return RedirectResponse(PAGE, status_code=303)
        if action == "opposition":
            service.object_to_prospecting(session, mac, clock.now())
        elif action == "effacement":
            service.erase(session, mac, clock.now())
        elif message:
            service.ask_human(session, mac, RequestKind.rectification, message, clock.now())
        else:
            shown = service.record(session, mac, clock.now())
            errors = {"message": _("Écrivez ce qu'il faut corriger.")}
            return _record_page(request, shown, None, errors, 422)
    return RedirectResponse(f"{RECORD}?fait={action}", status_code=303)


@router.post(PAGE + "/fin")
def leave(request: Request) -> Response:
    response = RedirectResponse(PAGE, status_code=303)
    clear_cookie(response, request, ACCESS_COOKIE)
    return response
