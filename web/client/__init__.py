"""The marketer's pages after ordering: an order (its timeline, waves, invoices, report and
the choices a hold leaves), the documents behind the session, and the lists of orders,
invoices and quotes. Every action calls the service function its API route calls."""

from __future__ import annotations

from fastapi import APIRouter

from web.client import documents, exclusions, lists, order

router = APIRouter(include_in_schema=False)
router.include_router(order.router)
router.include_router(documents.router)
router.include_router(lists.router)
router.include_router(exclusions.router)
