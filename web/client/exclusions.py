"""The marketer's exclusion files ("Repoussoirs"): list, upload, delete, through the services
the API's routes call (sales/exclusions). The upload form is read as a stream like the API's
body: the form's token is checked before the first byte of the file is read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from kit import clock
from kit.db import unit_of_work
from sales.accounts.signin import WebUser
from sales.exclusions import service, stream
from sales.exclusions.exceptions import (
    ExclusionFileInUse,
    ExclusionFileMediaType,
    ExclusionFileNotFound,
    ExclusionFileTooLarge,
    ExclusionFileTooSmall,
    ExclusionFileUnreadable,
)
from sales.exclusions.schemas import ExclusionFileOut
from web.client.paths import EXCLUSIONS
from web.i18n import gettext as _
from web.security import CSRF_FIELD
from web.session import FormDep, PageRefused, WebUserDep, check_csrf
from web.staff import words
from web.templating import render

router = APIRouter(include_in_schema=False)
NAME_LIMIT = 120


def _page(request: Request, who: WebUser, status: int = 200, **more: Any) -> Response:
    with unit_of_work() as session:
        items = service.list_files(session, who.principal)
    added = next((f for f in items if f.id == request.query_params.get("ajoute")), None)
    context: dict[str, Any] = {
        "user": who,
        "active": "repoussoirs",
        "when": words.when,
        "items": items,
        "added": added,
        "deleted": request.query_params.get("supprime") == "1",
        "csrf": who.csrf_token,
        "csrf_field": CSRF_FIELD,
        "minimum": service.minimum(),
        "errors": {},
        **more,
    }
    return render(request, "client_exclusions.html", context, status)


def _staff_away(who: WebUser) -> None:
    if who.principal.is_staff:
        raise PageRefused(
            404, _("Page des clients"), _("Les fichiers repoussoirs sont ceux des clients.")
        )


@router.get(EXCLUSIONS)
def exclusions_page(request: Request, who: WebUserDep) -> Response:
    _staff_away(who)
    return _page(request, who)


@router.post(EXCLUSIONS)
async def upload_exclusion_file(request: Request, who: WebUserDep) -> Response:
    """The form's file, read as it arrives; the page again with the problem, or the list with
    the new file's counts."""
    _staff_away(who)
    try:
        found = await _upload(request, who)
    except (
        ExclusionFileTooSmall,
        ExclusionFileTooLarge,
        ExclusionFileUnreadable,
        ExclusionFileMediaType,
    ) as exc:
        return _page(request, who, 422, errors={"file": _problem(exc)})
    return RedirectResponse(f"{EXCLUSIONS}?ajoute={found.id}", status_code=303)


async def _upload(request: Request, who: WebUser) -> ExclusionFileOut:
    def checked(fields: dict[str, str]) -> None:
        check_csrf(who, {CSRF_FIELD: [fields.get(CSRF_FIELD, "")]})

    body = stream.body(request.headers.get("content-type", ""), checked)
    pull = stream.puller(request)

    def work() -> ExclusionFileOut:
        now = clock.now()
        with unit_of_work() as session:
            row = service.begin(session, who.principal, _("Fichier repoussoir"), "numbers", now)
            ingest = service.start("numbers", "FR")
            stream.consume(pull, body.write, ingest, session, row)
            name = body.fields.get("name", "").strip()[:NAME_LIMIT]
            if name:
                row.name = name
            return service.finish(session, row, ingest, now)

    return await run_in_threadpool(work)


def _problem(exc: Exception) -> str:
    """The refusal in the reader's language (never a line of the file)."""
    if isinstance(exc, ExclusionFileTooSmall):
        return _(
            "Le fichier compte %(accepted)s numéros valides distincts : il en faut au moins "
            "%(minimum)s. Ajoutez-y le reste de vos clients."
        ) % {"accepted": exc.extra.get("accepted", 0), "minimum": service.minimum()}
    if isinstance(exc, ExclusionFileTooLarge):
        return _("Le fichier dépasse 5 000 000 de lignes : découpez-le.")
    return _("Choisissez un fichier texte ou CSV, un numéro par ligne.")


@router.post(EXCLUSIONS + "/{file_id}/supprimer")
def delete_exclusion_file(
    request: Request, file_id: str, who: WebUserDep, fields: FormDep
) -> Response:
    _staff_away(who)
    check_csrf(who, fields)
    try:
        with unit_of_work() as session:
            service.delete(session, who.principal, file_id)
    except ExclusionFileNotFound:
        raise PageRefused(
            404, _("Fichier introuvable"), _("Ce fichier n'existe pas dans votre organisation.")
        ) from None
    except ExclusionFileInUse:
        problem = _(
            "Une commande pas encore envoyée écarte les membres de ce fichier : supprimez-le "
            "une fois la commande envoyée ou annulée."
        )
        return _page(request, who, 409, errors={"form": problem})
    return RedirectResponse(f"{EXCLUSIONS}?supprime=1", status_code=303)
