"""Sending (issue: one-shot dispatch): Celery app, send windows, carriers, receipts."""
