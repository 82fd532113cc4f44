"""The browser's side of security: headers on every response, session cookies, CSRF tokens
and the forms they arrive in."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from starlette.responses import Response

from kit import clock

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "rental_session"
SIGN_IN_COOKIE = "rental_sign_in"  # the sign-in form's CSRF token (no session yet)
CSRF_FIELD = "csrf_token"
MAX_FIELDS = 1000  # a segment form: ~300 boxes (exclusions included) and its communes

# Pages: scripts, styles and images from this service only; nothing inline, never framed.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# The API's documents (JSON, and the HTML report with its inline style sheet and SVG) and the
# STOP-link page (inline style): no script at all.
API_POLICY = "script-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc load their scripts from a CDN and start them inline: only framing is
# refused there.
DOCS_POLICY = "frame-ancestors 'none'"
DOCS = ("/docs", "/redoc")


def policy_for(path: str) -> str:
    if path.startswith(DOCS):
        return DOCS_POLICY
    # The marketer's documents are the API's renderings, served behind the session.
    if path.startswith(("/v1/", "/s/", "/app/documents/")) or path == "/openapi.json":
        return API_POLICY
    return PAGE_POLICY


class SecurityHeaders:
    """Content-Security-Policy, Referrer-Policy and X-Content-Type-Options on every response
    (a pure ASGI middleware: streamed responses get them too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"content-security-policy", policy_for(scope["path"]).encode()),
            (b"referrer-policy", b"same-origin"),
            (b"x-content-type-options", b"nosniff"),
        ]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in names
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(
    response: Response, request: Request, name: str, value: str, expires: datetime
) -> None:
    """HttpOnly (no script reads it), SameSite=Lax (not sent with another site's POST),
    Secure when the page came over HTTPS, gone at `expires`."""
    response.set_cookie(
        name,
        value,
        max_age=max(0, int((expires - clock.now()).total_seconds())),
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_https(request))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not expected or not given:
        return False
    return secrets.compare_digest(expected.encode(), given.encode())


Fields = dict[str, list[str]]


async def form_fields(request: Request) -> Fields:
    """The fields of an url-encoded form (the only kind the pages send). The body's size is
    bounded by the body-limit middleware in front of the app."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        return parse_qs(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:  # more fields than any page sends
        return {}


def field(fields: Fields, name: str) -> str:
    """One field's first value ('' when absent)."""
    values = fields.get(name)
    return values[0] if values else ""
