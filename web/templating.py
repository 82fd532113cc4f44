"""Jinja2 for the pages: autoescaped, in the request's language (French first), with numbers,
amounts and dates written as that language writes them."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.numbers import format_currency, format_decimal, get_group_symbol
from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

from web import i18n

HERE = Path(__file__).parent
STATIC = HERE / "static"
NNBSP = "\u202f"  # French thousands separator (CLDR's): a narrow no-break space


@lru_cache(maxsize=8)
def _group_symbol(language: str) -> str:
    return str(get_group_symbol(locale=language))


def number(n: int) -> str:
    """12345 -> '12 345' in French, '12,345' in English."""
    if type(n) is int and n >= 0:
        # What Babel writes for a count (groups of three in both languages), without its general
        # pattern machinery: the builder's map writes a hundred of them per count.
        return f"{n:,}".replace(",", _group_symbol(i18n.current()))
    return str(format_decimal(n, locale=i18n.current()))


def euros(cents: int) -> str:
    """123456 -> '1 234,56 €' in French, '€1,234.56' in English."""
    return str(format_currency(Decimal(cents) / 100, "EUR", locale=i18n.current()))


# Every value is escaped (autoescape on all templates, whatever their name); an undefined
# variable is an error, not a blank. Texts are `_("...")` with %(name)s placeholders, which the
# new-style gettext escapes before putting them in.
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
_env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
    i18n.gettext, i18n.ngettext, newstyle=True
)
_env.filters["number"] = number
_env.filters["euros"] = euros
templates = Jinja2Templates(env=_env)


def _switch(request: Request) -> dict[str, str]:
    """The language links' targets: back to this page (a form's answer goes home instead, as
    it cannot be fetched again)."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        back = "/"
    return {"language": i18n.current(), "back": i18n.same_site(back)}


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page that is never cached: it may show a person's own data, in its reader's
    language."""
    i18n.set_language(i18n.language_of(request))
    context = {**context, "i18n": _switch(request)}
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = i18n.current()
    response.headers["Vary"] = "Cookie, Accept-Language"
    return response
