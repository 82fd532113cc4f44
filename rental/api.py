"""Every router of the service, under /v1."""

from __future__ import annotations

from fastapi import APIRouter

from rental.quotes.endpoints import router as quotes

router = APIRouter(prefix="/v1")
router.include_router(quotes)
