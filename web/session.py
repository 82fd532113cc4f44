"""Who is signed in, and the refusals a page can answer with (as pages, not JSON)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.responses import RedirectResponse, Response

from kit.db import unit_of_work
from sales.accounts import signin
from sales.accounts.signin import WebUser
from web import i18n
from web.i18n import gettext as _
from web.security import CSRF_FIELD, SESSION_COOKIE, Fields, clear_cookie, field, form_fields
from web.security import same_token as _same
from web.templating import render

HOME = "/app/segment"
STAFF_HOME = "/app/gestion"  # account managers land on their work queue
CHANGE_PAGE = "/app/password"


def home_of(who: WebUser) -> str:
    """Where a person lands once signed in."""
    return STAFF_HOME if who.principal.is_staff else HOME


class SignInRequired(Exception):
    """No live session: the browser is sent to the sign-in form."""


class PasswordChangeRequired(Exception):
    """A one-time password is still in use: the browser is sent to change it."""


class PageRefused(Exception):
    """A page the person may not see or a form that cannot be taken, with what to do: its
    title and message already in the reader's language (`_()` where it is raised), or a French
    text marked with N_ (a refusal built in advance), translated when the page is shown."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status, self.title, self.message = status, title, message


def current(request: Request) -> WebUser | None:
    """The person of the request's session cookie (a short transaction of its own)."""
    with unit_of_work() as session:
        return signin.current(session, request.cookies.get(SESSION_COOKIE))


def _signed_in(request: Request) -> WebUser:
    who = current(request)
    if who is None:
        raise SignInRequired
    return who


AnyWebUserDep = Annotated[WebUser, Depends(_signed_in)]


def _ready(who: AnyWebUserDep) -> WebUser:
    if who.must_change_password:
        raise PasswordChangeRequired
    return who


WebUserDep = Annotated[WebUser, Depends(_ready)]
FormDep = Annotated[Fields, Depends(form_fields)]


def check_csrf(who: WebUser, fields: Fields) -> None:
    """Every form of a signed-in page carries the session's token: a form posted from another
    site cannot know it."""
    if not _same(who.csrf_token, field(fields, CSRF_FIELD)):
        raise PageRefused(
            403,
            _("Formulaire refusé"),
            _(
                "Ce formulaire a expiré ou ne vient pas de ce site. Rechargez la page et "
                "recommencez."
            ),
        )


def _to_sign_in(request: Request, _: Exception) -> Response:
    response = RedirectResponse("/", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response


def _to_password(request: Request, _: Exception) -> Response:
    return RedirectResponse(CHANGE_PAGE, status_code=303)


def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageRefused)
    who = current(request)
    i18n.set_language(i18n.language_of(request))
    title, message = i18n.gettext(exc.title), i18n.gettext(exc.message)
    context = {"user": who, "title": title, "message": message}
    return render(request, "error.html", context, exc.status)


def install(app: FastAPI) -> None:
    """The pages' refusals as pages (a redirect to sign in, an error page)."""
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(PasswordChangeRequired, _to_password)
    app.add_exception_handler(PageRefused, _refused)
