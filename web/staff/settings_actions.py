"""The forms of an organisation's settings page. The terms and the grid go through the API's
own route functions (sales/accounts/endpoints.py, sales/pricing/endpoints.py): the same service
and the same audit row as `PATCH /v1/organisations/{id}` and `PUT|DELETE .../price-grid`. People
and keys go through the services `rental accounts add-user|add-key|revoke-key` call, and are
recorded in the audit trail. A first password or a key is in the answer to its form, once."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from kit import clock
from kit.db import unit_of_work
from kit.errors import RentalError
from kit.settings import get_settings
from sales.accounts import endpoints as terms_api
from sales.accounts import service as accounts
from sales.accounts import signin
from sales.accounts.exceptions import CannotDisableSelf, EmailTaken, OrganisationNotFound
from sales.accounts.models import Organisation
from sales.accounts.repository import AuditRepository
from sales.accounts.schemas import Principal
from sales.pricing import endpoints as grid_api
from sales.pricing import service as pricing
from sales.pricing.exceptions import GridNotFound
from sales.pricing.schemas import Price, PriceGrid
from web.i18n import N_
from web.i18n import gettext as _
from web.security import Fields, field
from web.session import FormDep, PageRefused, check_csrf
from web.staff import settings_forms as forms
from web.staff.access import StaffUserDep
from web.staff.actions import FormInvalid
from web.staff.settings import ORGANISATIONS, Secret, Sent, done, settings_page, whole_id

router = APIRouter(include_in_schema=False)
PAGE = ORGANISATIONS + "/{organisation_id}"
NOT_FOUND = N_("Cette organisation n'existe pas ou plus : choisissez-en une dans la liste.")


def _organisation(session: Session, organisation_id: int) -> Organisation:
    try:
        return accounts.get_organisation(session, organisation_id)
    except OrganisationNotFound:
        raise PageRefused(404, _("Organisation introuvable"), _(NOT_FOUND)) from None


def _audit(
    session: Session, who: Principal, organisation_id: int, action: str, details: dict[str, str]
) -> None:
    AuditRepository(session).record(
        clock.now(), who.user_id, organisation_id, action, str(organisation_id), details
    )


@router.post(PAGE + "/conditions")
def post_terms(
    request: Request, who: StaffUserDep, fields: FormDep, organisation_id: str
) -> Response:
    """The contract's terms and billing identity, as `PATCH /v1/organisations/{id}`."""
    org_id = whole_id(organisation_id)
    check_csrf(who, fields)
    try:
        body = forms.terms(fields)
    except FormInvalid as exc:
        typed = {n: field(fields, n) for n in forms.TERMS_FIELDS}
        return settings_page(request, who, org_id, Sent("conditions", exc.errors, typed), 422)
    with unit_of_work() as session:
        _organisation(session, org_id)
        terms_api.set_terms(org_id, body, who.principal, session)
    return done(org_id, "conditions", "conditions")


def _read_grid(fields: Fields, preview: bool) -> tuple[PriceGrid, list[Price]]:
    """The grid typed and, for a preview, the sample orders priced under it (the one typed and
    the usual ones); every field's error at once."""
    errors: dict[str, str] = {}
    grid = sample = None
    try:
        grid = forms.grid(fields)
    except FormInvalid as exc:
        errors |= exc.errors
    if preview:
        try:
            sample = forms.sample(fields)
        except FormInvalid as exc:
            errors |= exc.errors
    if errors or grid is None:
        raise FormInvalid(errors)
    if sample is None:
        return grid, []
    quantities = sorted({*forms.SAMPLES, sample.quantity})
    return grid, [pricing.price(grid, q, sample.mix, sample.segments) for q in quantities]


@router.post(PAGE + "/grille")
def post_grid(
    request: Request, who: StaffUserDep, fields: FormDep, organisation_id: str
) -> Response:
    """« Prévisualiser »: the page again with sample prices under the grid typed, nothing
    saved; « Enregistrer »: the contract grid, as `PUT .../price-grid`."""
    org_id = whole_id(organisation_id)
    check_csrf(who, fields)
    typed = forms.typed_grid(fields)
    preview = field(fields, "do") == "preview"
    try:
        grid, prices = _read_grid(fields, preview)
    except FormInvalid as exc:
        return settings_page(request, who, org_id, Sent("grille", exc.errors, typed), 422)
    if preview:
        return settings_page(request, who, org_id, Sent("grille", {}, typed), preview=prices)
    with unit_of_work() as session:
        _organisation(session, org_id)
        grid_api.put_grid(org_id, grid, who.principal, session)
    return done(org_id, "grille", "grille")


@router.post(PAGE + "/grille/standard")
def reset_grid(
    request: Request, who: StaffUserDep, fields: FormDep, organisation_id: str
) -> Response:
    """Back to the default grid, as `DELETE .../price-grid`."""
    org_id = whole_id(organisation_id)
    check_csrf(who, fields)
    try:
        with unit_of_work() as session:
            _organisation(session, org_id)
            grid_api.delete_grid(org_id, who.principal, session)
    except GridNotFound:
        return done(org_id, "grille-deja-standard", "grille")
    return done(org_id, "grille-standard", "grille")


EMAIL_WORDS = N_("Saisissez une adresse e-mail complète, par exemple prenom.nom@entreprise.fr.")


@router.post(PAGE + "/personnes")
def add_person(
    request: Request, who: StaffUserDep, fields: FormDep, organisation_id: str
) -> Response:
    """A person who signs in, with a first password shown on this answer only (to be changed
    at the first sign-in), as `rental accounts add-user`."""
    org_id = whole_id(organisation_id)
    check_csrf(who, fields)
    typed = {"email": field(fields, "email"), "role": field(fields, "role")}
    try:
        with unit_of_work() as session:
            org = _organisation(session, org_id)
            role = forms.role(fields, org.name == get_settings().broker_organisation)
            made = signin.add_user(session, org.name, role, typed["email"], None)
            details = {"email": made.email, "role": role.value}
            _audit(session, who.principal, org_id, "user.added", details)
    except FormInvalid as exc:
        return settings_page(request, who, org_id, Sent("personnes", exc.errors, typed), 422)
    except EmailTaken:
        taken = _("Une personne a déjà un compte avec cet e-mail : saisissez-en un autre.")
        return settings_page(request, who, org_id, Sent("personnes", {"email": taken}, typed), 409)
    except RentalError as exc:
        if exc.status != 422:
            raise
        return settings_page(
            request, who, org_id, Sent("personnes", {"email": _(EMAIL_WORDS)}, typed), 422
        )
    assert made.one_time_password is not None  # noqa: S101  (no password was given)
    secret = Secret("password", made.one_time_password, made.email)
    return settings_page(request, who, org_id, secret=secret)


@router.post(PAGE + "/cles")
def add_key(request: Request, who: StaffUserDep, fields: FormDep, organisation_id: str) -> Response:
    """An API key, shown on this answer only, as `rental accounts add-key`."""
    org_id = whole_id(organisation_id)
    check_csrf(who, fields)
    typed = {"label": field(fields, "label"), "role": field(fields, "role")}
    try:
        with unit_of_work() as session:
            org = _organisation(session, org_id)
            role = forms.role(fields, org.name == get_settings().broker_organisation)
            issued = accounts.add_key(session, org.name, role, forms.label(fields))
            details = {"prefix": issued.prefix, "role": role.value, "user": issued.user}
            _audit(session, who.principal, org_id, "api_key.issued", details)
    except FormInvalid as exc:
        return settings_page(request, who, org_id, Sent("cles", exc.errors, typed), 422)
    return settings_page(request, who, org_id, secret=Secret("key", issued.key, issued.user))


@router.post(PAGE + "/cles/{key_id}/revocation")
def revoke_key(
    request: Request, who: StaffUserDep, fields: FormDep, organisation_id: str, key_id: str
) -> Response:
    """Revoke one of the organisation's live keys, as `rental accounts revoke-key`."""
    org_id = whole_id(organisation_id)
    check_csrf(who, fields)
    gone = _("Cette clé n'est plus active (déjà révoquée) ou n'est pas de cette organisation.")
    try:
        with unit_of_work() as session:
            _organisation(session, org_id)
            live = [
                k
                for k in accounts.keys_of(session, org_id)
                if str(k.id) == key_id and k.revoked_at is None
            ]
            if not live:
                raise FormInvalid({"": gone})
            revoked = accounts.revoke_key(session, live[0].prefix)
            _audit(session, who.principal, org_id, "api_key.revoked", {"prefix": revoked.prefix})
    except FormInvalid as exc:
        return settings_page(request, who, org_id, Sent("cles", exc.errors), 409)
    except RentalError as exc:
        if exc.status != 422:  # two live keys with this prefix: refused by the service
            raise
        several = _("Plusieurs clés actives commencent ainsi : révoquez-la avec la commande.")
        return settings_page(request, who, org_id, Sent("cles", {"": several}), 409)
    return done(org_id, "cle-revoquee", "cles")


@router.post(PAGE + "/personnes/{user_id}/{change}")
def set_disabled(
    request: Request,
    who: StaffUserDep,
    fields: FormDep,
    organisation_id: str,
    user_id: str,
    change: str,
) -> Response:
    """Disable a person's account (sessions ended, keys revoked) or enable it again, as
    `rental accounts disable-user|enable-user`; audited by the service."""
    org_id = whole_id(organisation_id)
    if change not in ("desactivation", "reactivation"):
        raise PageRefused(404, _("Page introuvable"), _("Revenez à la fiche de l'organisation."))
    check_csrf(who, fields)
    gone = _("Cette personne n'a pas de compte dans cette organisation.")
    try:
        with unit_of_work() as session:
            _organisation(session, org_id)
            person = next(
                (u for u in accounts.members(session, org_id) if str(u.id) == user_id and u.email),
                None,
            )
            if person is None or person.email is None:
                raise FormInvalid({"": gone})
            disable = change == "desactivation"
            signin.set_disabled(session, person.email, disable, who.principal)
    except FormInvalid as exc:
        return settings_page(request, who, org_id, Sent("personnes", exc.errors), 409)
    except CannotDisableSelf:
        yourself = _(
            "Vous ne pouvez pas désactiver votre propre compte : demandez-le à un collègue."
        )
        return settings_page(request, who, org_id, Sent("personnes", {"": yourself}), 409)
    return done(org_id, "compte-desactive" if disable else "compte-reactive", "personnes")
