"""FastAPI dependencies: the request's transaction and the authenticated caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from kit.db import unit_of_work
from kit.text import UUID
from sales.accounts import service as accounts
from sales.accounts.exceptions import RoleRequired
from sales.accounts.schemas import Principal


def _session() -> Iterator[Session]:
    """The request owns the transaction: commit when the endpoint returns, before the response
    is sent (scope="function"), roll back when it raises."""
    with unit_of_work() as session:
        yield session


SessionDep = Annotated[Session, Depends(_session, scope="function")]


def bearer_key(authorization: str | None) -> str | None:
    """The API key of an `Authorization: Bearer <key>` header."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return None


# Documented as the API's security scheme; a missing or malformed header is our own 401.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: 'Authorization: Bearer <key>'. A client's key acts for its "
    "organisation; an account manager's key for all of them.",
)


def _principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, looked up in a short transaction of its own: the request's transaction
    takes a connection only when the endpoint uses the database."""
    with unit_of_work() as session:
        return accounts.authenticate(
            session, credentials.credentials.strip() if credentials else None
        )


PrincipalDep = Annotated[Principal, Depends(_principal)]
# `openapi_extra` of a route that takes no key (health checks): the document says so, and a
# generated client sends none.
PUBLIC: dict[str, Any] = {"security": []}


def _staff(who: PrincipalDep) -> Principal:
    if not who.is_staff:
        raise RoleRequired("this action is reserved to account managers")
    return who


StaffDep = Annotated[Principal, Depends(_staff)]


# Path and query parameters with bounds, so that malformed input is a 422, never a 500.
IdPath = Annotated[str, Path(description="an id (UUID); anything else is not found")]
OrganisationPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
OrganisationQuery = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="account managers only")
]
IdQuery = Annotated[str | None, Query(pattern=UUID, max_length=36)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
