"""The pages' router, for the composition root (rental/app.py) to include."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from web import client, i18n, order, rights, segment, signin, staff

# Every page knows its reader's language before its code runs (web.i18n.gettext).
router = APIRouter(include_in_schema=False, dependencies=[Depends(i18n.use_language)])
router.include_router(signin.router)
router.include_router(segment.router)
router.include_router(staff.router)
router.include_router(order.router)
router.include_router(client.router)
router.include_router(rights.router)
router.include_router(i18n.router)
