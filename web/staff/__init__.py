"""The account managers' pages: the work queue and its actions, an order as staff see it, the
quote audit, the organisations' settings. Every action calls the service function its API route
calls."""

from __future__ import annotations

from fastapi import APIRouter

from web.staff import actions, audit, order, queue, rights, settings, settings_actions

router = APIRouter(include_in_schema=False)
router.include_router(queue.router)
router.include_router(order.router)
router.include_router(actions.router)
router.include_router(audit.router)
router.include_router(settings.router)
router.include_router(settings_actions.router)
router.include_router(rights.router)
