"""Signing in and out, and changing a password: the pages around a session."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from kit import clock
from kit.db import unit_of_work
from kit.errors import RentalError
from sales.accounts import signin
from sales.accounts.exceptions import SignInFailed, SignInThrottled, WeakPassword
from web.i18n import N_, ngettext
from web.i18n import gettext as _
from web.security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    clear_cookie,
    field,
    new_token,
    same_token,
    set_cookie,
)
from web.session import CHANGE_PAGE, AnyWebUserDep, FormDep, check_csrf, current, home_of
from web.templating import render

router = APIRouter(include_in_schema=False)
EXPIRED = N_("Ce formulaire a expiré : saisissez à nouveau votre mot de passe.")


def _sign_in_page(
    request: Request,
    email: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
    retry_after: int | None = None,
) -> Response:
    """The sign-in form, with a fresh CSRF token in a cookie and in the form (double submit:
    another site can make a browser post the form, but cannot read the cookie to fill it in)."""
    token = new_token()
    context = {"user": None, "csrf": token, "email": email, "errors": errors or {}}
    response = render(request, "sign_in.html", context, status)
    set_cookie(response, request, SIGN_IN_COOKIE, token, clock.now() + timedelta(hours=2))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.get("/")
def home(request: Request) -> Response:
    who = current(request)
    if who is None:
        return _sign_in_page(request)
    return RedirectResponse(
        CHANGE_PAGE if who.must_change_password else home_of(who), status_code=303
    )


def _throttled(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return ngettext(
        "Trop de tentatives de connexion ont échoué. Par sécurité, attendez %(num)s minute "
        "avant de réessayer.",
        "Trop de tentatives de connexion ont échoué. Par sécurité, attendez %(num)s minutes "
        "avant de réessayer.",
        minutes,
    ) % {"num": minutes}


@router.post("/sign-in")
def sign_in(request: Request, fields: FormDep) -> Response:
    email, password = field(fields, "email").strip()[:254], field(fields, "password")
    if not same_token(request.cookies.get(SIGN_IN_COOKIE), field(fields, CSRF_FIELD)):
        return _sign_in_page(request, email, {"form": _(EXPIRED)}, 403)
    missing = {
        name: text
        for name, value, text in (
            ("email", email, _("Saisissez votre adresse e-mail.")),
            ("password", password, _("Saisissez votre mot de passe.")),
        )
        if not value
    }
    if missing:
        return _sign_in_page(request, email, missing, 422)
    address = request.client.host if request.client else "unknown"
    refused: RentalError | None = None
    who: signin.WebUser | None = None
    with unit_of_work() as session:  # a failure is committed too: the throttle counts it
        signin.sign_out(session, request.cookies.get(SESSION_COOKIE))
        try:
            signed = signin.sign_in(session, email, password, address)
            who = signin.current(session, signed.token)
        except (SignInFailed, SignInThrottled) as exc:
            refused = exc
    if isinstance(refused, SignInThrottled):
        wait = int(refused.extra.get("retry_after_seconds", 60))
        return _sign_in_page(request, email, {"form": _throttled(wait)}, 429, wait)
    if refused is not None:
        text = _("E-mail ou mot de passe incorrect. Vérifiez-les et réessayez.")
        return _sign_in_page(request, email, {"form": text}, 401)
    assert who is not None  # noqa: S101  (the session just opened)
    target = CHANGE_PAGE if signed.must_change_password else home_of(who)
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, signed.token, signed.expires_at)
    clear_cookie(response, request, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
def sign_out(request: Request, fields: FormDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    with unit_of_work() as session:
        who = signin.current(session, token)
        if who is not None:
            check_csrf(who, fields)
            signin.sign_out(session, token)
    response = RedirectResponse("/", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response


def _password_page(
    request: Request, who: signin.WebUser, errors: dict[str, str], status: int = 200
) -> Response:
    context = {
        "user": who,
        "csrf": who.csrf_token,
        "errors": errors,
        "minimum": signin.MIN_PASSWORD,
    }
    return render(request, "password.html", context, status)


@router.get(CHANGE_PAGE)
def password_form(request: Request, who: AnyWebUserDep) -> Response:
    return _password_page(request, who, {})


@router.post(CHANGE_PAGE)
def change_password(request: Request, who: AnyWebUserDep, fields: FormDep) -> Response:
    check_csrf(who, fields)
    old, new, again = (field(fields, n) for n in ("current", "new", "again"))
    if new != again:
        errors = {
            "again": _("Les deux nouveaux mots de passe diffèrent : saisissez-les à nouveau.")
        }
        return _password_page(request, who, errors, 422)
    problem: dict[str, str] = {}
    with unit_of_work() as session:
        try:
            signin.change_password(session, who, old, new)
        except SignInFailed:
            problem = {"current": _("Le mot de passe actuel est incorrect.")}
        except WeakPassword:
            problem = {
                "new": _(
                    "Choisissez un nouveau mot de passe d'au moins %(minimum)s caractères, "
                    "différent de l'actuel."
                )
                % {"minimum": signin.MIN_PASSWORD}
            }
    if problem:
        return _password_page(request, who, problem, 422)
    return RedirectResponse(home_of(who), status_code=303)
