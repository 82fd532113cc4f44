"""French first, English available: the request's language, the English catalogue, gettext
for Python code, and the switch between the two.

French is the source language: a msgid is the French text as the pages write it, so French
needs no catalogue. English is `locale/en/LC_MESSAGES/messages.po`, read once at start (no
compiled .mo to build or to forget); a fuzzy or empty entry falls back to the French.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, Translations
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from starlette.responses import RedirectResponse

from web.security import is_https

LOCALES = Path(__file__).parent / "locale"
DEFAULT = "fr"
LANGUAGES = ("fr", "en")
COOKIE = "lang"
_YEAR = 365 * 24 * 3600

_current: ContextVar[str] = ContextVar("web_language", default=DEFAULT)


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """The catalogue of `language`, from its .po file; French (the msgids) needs none."""
    po = LOCALES / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT or not po.exists():
        return _gettext.NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries left out: they show the French
    compiled.seek(0)
    return Translations(compiled)


def _accepted(header: str) -> str | None:
    """The first of our languages in an Accept-Language header, by quality then order."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None


def language_of(request: Request) -> str:
    """The `lang` cookie set by the switch, otherwise the browser's Accept-Language, else
    French."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return str(chosen)
    return _accepted(request.headers.get("accept-language", "")) or DEFAULT


async def use_language(request: Request) -> None:
    """A dependency of every page: the request's language for the Python code behind it.
    Async, so that the value is set in the request's own context, which the endpoint (even
    one run in the thread pool) inherits."""
    _current.set(language_of(request))


def current() -> str:
    return _current.get()


def set_language(language: str) -> None:
    _current.set(language if language in LANGUAGES else DEFAULT)


def gettext(message: str) -> str:
    """`message` (French) in the request's language."""
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ngettext(singular, plural, n)


def lazy_gettext(message: str) -> LazyProxy:
    """For module-level text (a constant, a prebuilt error): translated when shown."""
    return LazyProxy(gettext, message, enable_cache=False)


def N_(message: str) -> str:  # noqa: N802 (the name `pybabel extract` looks for)
    """Marks a French text for the catalogue where it is translated later (a `Words` value)."""
    return message


class Words(Mapping[str, str]):
    """A table of code words to French texts that answers in the request's language:
    `ORDER_STATUS.get("sent")` is 'Envoyée' or 'Sent'."""

    def __init__(self, texts: dict[str, str]) -> None:
        self._texts = texts

    def __getitem__(self, key: str) -> str:
        return gettext(self._texts[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)


# The switch --------------------------------------------------------------------------------

router = APIRouter()


def same_site(path: str | None) -> str:
    """`path` when it is a path of this site ('/app/commandes?etat=sent'), else '/': the
    switch never sends a browser to another site."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return path


@router.get("/langue/{language}")
def switch(
    request: Request,
    language: Annotated[str, PathParam(pattern="^(fr|en)$")],
    retour: Annotated[str | None, Query(max_length=2000)] = None,
) -> RedirectResponse:
    """Remembers the language for a year and goes back to the page the link was on."""
    response = RedirectResponse(same_site(retour), status_code=303)
    response.set_cookie(
        COOKIE,
        language,
        max_age=_YEAR,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    return response
