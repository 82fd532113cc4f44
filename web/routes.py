"""The pages' router, for the composition root (rental/app.py) to include."""

from __future__ import annotations

from fastapi import APIRouter

from web import client, order, segment, signin, staff

router = APIRouter(include_in_schema=False)
router.include_router(signin.router)
router.include_router(segment.router)
router.include_router(staff.router)
router.include_router(order.router)
router.include_router(client.router)
