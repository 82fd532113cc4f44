"""FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dispatch.endpoints import stop_router
from kit import redact
from kit.errors import RentalError
from rental import api, errors
from rental.migrations import upgrade

log = logging.getLogger("rental")


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    redact.install()
    upgrade()
    try:  # load the base now rather than on the first quote
        from segmentation import runtime

        runtime.warm_up()
    except RentalError as exc:
        log.warning("%s", exc.detail)
    yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="Prospect file rental",
        version="1",
        description="Targeted SMS campaigns on a rented opt-in base. Customers never see a "
        "phone number; counts under the minimum segment size are never shown.",
        lifespan=_lifespan,
    )
    errors.install(app)
    app.include_router(api.router)
    app.include_router(stop_router)  # /s/{token}: short, outside /v1, in the SMS itself
    return app
