"""HTTP: the `Idempotency-Key` header on the POSTs that create something.

A route opts in with `dependencies=[Idempotent]` on a router built with
`route_class=IdempotentRoute`:

- the dependency authenticates the caller (the key's scope is its organisation), checks the
  header, then claims the key or finds what holds it: the first answer, replayed at once; a
  request still running, waited for (bounded, then a 409 with Retry-After); or another request
  under the same key, a 422. It claims before the request's own session touches the database,
  so that a request never waits for a second pooled connection while holding one;
- the route stores a kept answer (2xx, 4xx) in the request's transaction, so that the answer
  commits with what the request created, or not at all;
- once the request's session is closed, the dependency releases the key of a request that
  failed (5xx, "retry later") and stores a 4xx raised as an error.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kit import clock
from kit.db import unit_of_work
from kit.settings import get_settings
from sales.accounts import service as accounts
from sales.accounts.deps import SessionDep, bearer_key
from sales.idempotency import service
from sales.idempotency.exceptions import IdempotencyKeyInProgress, IdempotencyKeyTakenOver
from sales.idempotency.service import Answer, Attempt, Claim

log = logging.getLogger(__name__)

REPLAYED = "Idempotent-Replayed"  # on a replayed answer (the name Stripe's API uses)
RETRY_AFTER_SECONDS = 2
PURGE_EVERY_SECONDS = 60.0
_next_purge = 0.0  # monotonic time of this process's next purge of expired keys


def purge_soon() -> None:
    """The next request purges expired keys, as the first one of a new process does."""
    global _next_purge
    _next_purge = 0.0


@dataclass
class _Held:
    """A claim held by the request, and the request's session to store its answer in."""

    claim: Claim
    session: Session | None = None
    kept: bool = False  # its answer is written in the request's transaction


class _Replay(Exception):  # noqa: N818  (a control-flow signal to IdempotentRoute, not an error)
    def __init__(self, answer: Answer) -> None:
        super().__init__("replay")
        self.answer = answer


def _caller_scope(authorization: str | None) -> str:
    """The authenticated caller's organisation and role: every key of an organisation sees its
    orders, so a retry through another of its keys finds the first answer; the role is part of
    it because an account manager and a client get different views of one quote or order."""
    with unit_of_work() as session:
        who = accounts.authenticate(session, bearer_key(authorization))
    return f"organisation:{who.organisation_id}:{who.role.value}"


def _purge_now_and_then() -> None:
    """Expired keys are deleted lazily: at most once a minute per process, a batch at a time."""
    global _next_purge
    if time.monotonic() < _next_purge:
        return
    _next_purge = time.monotonic() + PURGE_EVERY_SECONDS
    try:
        with unit_of_work() as session:
            service.purge(session, clock.now())
    except OperationalError as exc:  # the database is busy: the next purge will do
        log.warning("expired idempotency keys not purged: %s", type(exc.orig).__name__)


def _try_claim(attempt: Attempt) -> Claim | Answer | service.Busy | None:
    _purge_now_and_then()
    try:
        with unit_of_work() as session:
            return service.try_claim(session, attempt, clock.now())
    except IntegrityError:  # another request inserted the key between our read and our insert
        return None


async def _acquire(attempt: Attempt) -> Claim:
    """The claim on the key; raises _Replay with the first answer when there is one, or
    IdempotencyKeyInProgress when the request holding the key has not answered in time."""
    deadline = time.monotonic() + get_settings().idempotency.wait_seconds
    pause = 0.02
    while True:
        outcome = await run_in_threadpool(_try_claim, attempt)
        if isinstance(outcome, Claim):
            return outcome
        if isinstance(outcome, Answer):
            raise _Replay(outcome)
        left = deadline - time.monotonic()
        if left <= 0:
            raise IdempotencyKeyInProgress(
                "a request with this Idempotency-Key is still in progress: retry in a few "
                "seconds to get its answer",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        if outcome is not None:  # busy: poll, more slowly as the wait goes on
            await anyio.sleep(min(pause, left))
            pause = min(pause * 2, 0.25)


def _keepable(response: Response) -> bool:
    """A 2xx or 4xx answer is replayed; a 5xx, or an answer that says "retry later", is not:
    replaying it would refuse for a day what the service may do in a minute."""
    return (
        response.status_code < 500
        and "retry-after" not in response.headers
        and isinstance(getattr(response, "body", None), bytes)
    )


def _store_alone(claim: Claim, response: Response) -> None:
    try:
        with unit_of_work() as session:
            service.complete(
                session,
                claim,
                response.status_code,
                response.headers.get("content-type"),
                bytes(response.body),
                clock.now(),
            )
    except SQLAlchemyError as exc:  # the refusal is not replayed: a retry runs it again
        _unsettled(exc)
        _release(claim)


def _release(claim: Claim) -> None:
    try:
        with unit_of_work() as session:
            service.release(session, claim)
    except SQLAlchemyError as exc:
        _unsettled(exc)


def _unsettled(exc: SQLAlchemyError) -> None:
    """The key stays claimed until its lease runs out; then a retry takes it over (safely: this
    request created nothing). Statements and values are not logged (hide_parameters)."""
    log.warning("idempotency key left claimed: %s", type(exc).__name__)


async def _rendered(request: Request, exc: Exception) -> Response | None:
    """The answer the application's error handlers give for `exc` (None: no handler, a 500)."""
    handlers: dict[Any, Callable[[Request, Exception], Any]] = request.app.exception_handlers
    handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    if handler is None:
        return None
    response = handler(request, exc)
    if inspect.isawaitable(response):
        response = await response
    return response if isinstance(response, Response) else None


async def _after_error(request: Request, held: _Held, exc: Exception) -> None:
    response = await _rendered(request, exc)
    if response is not None and _keepable(response):
        await run_in_threadpool(_store_alone, held.claim, response)
    else:
        await run_in_threadpool(_release, held.claim)


KEY_DESCRIPTION = (
    "Makes a retry safe: a request repeated with the same key and the same body within 24 h "
    "gets the first answer again (same status and body, header `Idempotent-Replayed: true`) "
    "and creates nothing more. The same key with another body or route is a 422; while the "
    "first request is still running, a retry waits for its answer (409 with Retry-After after "
    "a few seconds). Keys are the caller organisation's own. 1 to 255 printable ASCII "
    "characters: a random UUID per new request is a good choice."
)


async def _guard(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=KEY_DESCRIPTION,
            # Checked by service.check_key, for an error that never echoes the value. (HTTP
            # strips spaces around a header's value: the pattern says so.)
            json_schema_extra={
                "minLength": 1,
                "maxLength": service.MAX_KEY_LENGTH,
                "pattern": "^[!-~]([ -~]*[!-~])?$",
            },
            examples=["5f0c3b4e-9d1a-4c55-8a61-2f8e0d7b9c12"],
        ),
    ] = None,
) -> AsyncIterator[_Held | None]:
    if idempotency_key is None:
        yield None
        return
    if not isinstance(request.scope.get("route"), IdempotentRoute):
        raise RuntimeError("a route with the Idempotent dependency needs IdempotentRoute")
    # The caller first: an unauthenticated request is a 401 whatever its key.
    scope = await run_in_threadpool(_caller_scope, request.headers.get("authorization"))
    service.check_key(idempotency_key)
    body = await request.body()
    attempt = Attempt(
        scope=scope,
        key_digest=service.digest(idempotency_key),
        route=f"{request.method} {request.url.path}"[:300],
        fingerprint=service.fingerprint(request.method, request.url.path, request.url.query, body),
    )
    held = _Held(await _acquire(attempt))
    request.state.idempotency = held
    try:
        yield held
    except Exception as exc:
        with anyio.CancelScope(shield=True):
            await _after_error(request, held, exc)
        raise
    except BaseException:  # cancelled: the request has no answer
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_release, held.claim)
        raise
    else:  # runs after the answer was sent: release the key of an answer not kept
        if not held.kept:
            await run_in_threadpool(_release, held.claim)


def _bind(held: Annotated[_Held | None, Depends(_guard)], session: SessionDep) -> None:
    """Give the claim the request's session (the one the endpoint writes in)."""
    if held is not None:
        held.session = session


Idempotent = Depends(_bind)


def _complete(held: _Held, response: Response) -> None:
    assert held.session is not None  # noqa: S101  (_bind ran before the endpoint)
    lease = get_settings().idempotency.lease_seconds
    if not service.complete(
        held.session,
        held.claim,
        response.status_code,
        response.headers.get("content-type"),
        bytes(response.body),
        clock.now(),
    ):
        raise IdempotencyKeyTakenOver(
            f"this request ran longer than {lease} s and a retry with the same "
            "Idempotency-Key took its place; nothing was created by this one: retry with the "
            "same key to get the answer of the one that did",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )
    held.kept = True


class IdempotentRoute(APIRoute):
    """Replays a stored answer, and stores the answer of a request that holds its key in the
    request's own transaction (before the endpoint's session commits)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await handle(request)
            except _Replay as replay:
                answer = replay.answer
                return Response(
                    answer.body,
                    status_code=answer.status,
                    media_type=answer.media_type,
                    headers={REPLAYED: "true"},
                )
            held = getattr(request.state, "idempotency", None)
            if isinstance(held, _Held) and _keepable(response):
                await run_in_threadpool(_complete, held, response)
            return response

        return handler
