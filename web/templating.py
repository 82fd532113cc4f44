"""Jinja2 for the pages: autoescaped, French number formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

HERE = Path(__file__).parent
STATIC = HERE / "static"
NNBSP = "\u202f"  # French thousands separator: a narrow no-break space


def number(n: int) -> str:
    """12345 -> '12 345'."""
    return f"{n:,}".replace(",", NNBSP)


def euros(cents: int) -> str:
    """123456 -> '1 234,56 €'."""
    whole, part = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    return f"{sign}{number(whole)},{part:02d}\u00a0€"


# Every value is escaped (autoescape on all templates, whatever their name); an undefined
# variable is an error, not a blank.
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["number"] = number
_env.filters["euros"] = euros
templates = Jinja2Templates(env=_env)


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page that is never cached: it may show a person's own data."""
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response
