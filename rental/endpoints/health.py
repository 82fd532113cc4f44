"""Liveness (`/v1/health`: the process answers, its clock, its carrier) and readiness
(`/v1/health/ready`: what it needs to serve is there). Neither needs a key; neither sends
anything to a carrier nor starts a server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from dispatch import service as carrier_status
from dispatch.schemas import CarrierHealth
from kit import clock, redisd
from kit import http_errors as errors
from kit.db import unit_of_work
from kit.errors import RentalError
from kit.settings import get_settings
from sales.accounts.deps import PUBLIC, SessionDep
from segmentation import runtime

router = APIRouter(tags=["health"])
UNAVAILABLE = "unavailable"


class Health(BaseModel):
    status: str = Field(
        default="ok",
        description="ok; degraded when the carrier is unavailable (the API works, sending waits)",
    )
    now: str = Field(description="the service's clock (a demo may start it at another instant)")
    carrier: CarrierHealth


class Check(BaseModel):
    ok: bool
    detail: str = Field(description="what was found; when not ok, what to do")


class Readiness(BaseModel):
    status: str = Field(description="ready, or not_ready (HTTP 503)")
    failed: list[str] = Field(description="the checks that failed, by name")
    checks: dict[str, Check] = Field(description="database, redis, base, carrier")


@router.get(
    "/health",
    response_model=Health,
    summary="The service is up, its time and its carrier",
    responses=errors.responses(503),
    openapi_extra=PUBLIC,
)
def get_health(session: SessionDep) -> Health:
    carrier = carrier_status.health(session)
    return Health(
        status="degraded" if carrier.state == UNAVAILABLE else "ok",
        now=clock.now().isoformat(),
        carrier=carrier,
    )


def _database() -> Check:
    with unit_of_work() as session:
        session.execute(select(1))
    return Check(ok=True, detail="answers")


def _redis() -> Check:
    # Without RENTAL_REDIS_URL, the home's private server is started if need be, as by any
    # process of the home that needs it.
    client = redisd.probe()
    if client is None:  # pragma: no cover - probe() starts it
        return Check(ok=False, detail="no Redis server: " + HINTS["redis"])
    try:
        client.ping()
    finally:
        client.close()
    return Check(ok=True, detail="answers PING")


def _base(now: datetime) -> Check:
    snapshot = runtime.current().engine.snapshot
    created = datetime.fromisoformat(str(snapshot.manifest["created_at"]))
    age_days = (now - created).total_seconds() / 86400
    limit = get_settings().operations.base_max_age_days
    detail = f"snapshot {snapshot.version}, {age_days:.1f} days old"
    if age_days > limit:
        return Check(
            ok=False,
            detail=f"{detail}, older than RENTAL_BASE_MAX_AGE_DAYS ({limit:g}): refresh it "
            "(`rental base refresh`)",
        )
    return Check(ok=True, detail=detail)


def _carrier() -> Check:
    """Configured, and what the workers last saw of it (nothing is sent to find out). An
    unavailable carrier keeps the API ready: it still takes quotes and orders, sending waits."""
    carriers = get_settings().carriers
    missing = {
        "smpp": None if carriers.smpp.host else "RENTAL_SMPP_HOST",
        "http": None if carriers.http.url else "RENTAL_HTTP_GATEWAY_URL",
    }.get(carriers.name)
    if missing:
        return Check(ok=False, detail=f"carrier {carriers.name}: set {missing}")
    if carriers.name == "simulator":
        return Check(ok=True, detail="simulator")
    with unit_of_work() as session:
        seen = carrier_status.health(session)
    detail = f"carrier {carriers.name}: {seen.state}"
    if seen.state == UNAVAILABLE:
        detail += " (sending waits; see `rental carriers status`)"
    return Check(ok=True, detail=detail)


HINTS = {
    "database": "check RENTAL_DATABASE_URL and that the database server runs",
    "redis": "check RENTAL_REDIS_URL and that the Redis server runs",
}


def _run(name: str, check: Callable[[], Check]) -> Check:
    """A check that raises has failed: its error says what to do, never a traceback."""
    try:
        return check()
    except RentalError as exc:
        return Check(ok=False, detail=exc.detail)
    except Exception as exc:  # noqa: BLE001 - a database or Redis error of any kind
        hint = HINTS.get(name, "see the service's log")
        return Check(ok=False, detail=f"no answer ({type(exc).__name__}): {hint}")


@router.get(
    "/health/ready",
    response_model=Readiness,
    summary="Whether this instance can serve: database, Redis, base snapshot, carrier",
    responses=errors.responses(
        503, service_unavailable="not ready: `failed` names the checks, `checks` says each one"
    ),
    openapi_extra=PUBLIC,
)
def get_readiness() -> JSONResponse:
    now = clock.now()
    checks = {
        "database": _run("database", _database),
        "redis": _run("redis", _redis),
        "base": _run("base", lambda: _base(now)),
        "carrier": _run("carrier", _carrier),
    }
    failed = [name for name, c in checks.items() if not c.ok]
    body = Readiness(status="not_ready" if failed else "ready", failed=failed, checks=checks)
    out = body.model_dump(mode="json")
    if failed:  # the service's error shape, with the checks beside it
        detail = "; ".join(f"{name}: {checks[name].detail}" for name in failed)
        return JSONResponse({"error": "not_ready", "detail": detail, **out}, status_code=503)
    return JSONResponse(out)
