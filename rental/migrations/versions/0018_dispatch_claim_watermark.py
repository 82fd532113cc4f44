"""dispatch: a batch's claim watermark (issue 16)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-16 10:00:00

A run claims the next chunk of its batch by raising `claimed_to` (one row written) instead of
moving each recipient to `submitting`: a recipient of the batch still `pending` at or below the
watermark is being handed over. Batches written before this revision have none (NULL): their
recipients in flight are `submitting` as before, and both are read alike.

The ledger's batch index leaves the status out: a status change no longer moves the row in it
(twice per recipient: submitted, then its receipt), and PostgreSQL can update in place (HOT).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispatch_batches") as batch:
        batch.add_column(sa.Column("claimed_to", sa.Integer(), nullable=True))
    _batch_index(["order_id", "batch"])


def downgrade() -> None:
    _batch_index(["order_id", "batch", "status"])
    with op.batch_alter_table("dispatch_batches") as batch:
        batch.drop_column("claimed_to")


def _batch_index(columns: list[str]) -> None:
    op.drop_index("ix_dispatch_recipients_batch", table_name="dispatch_recipients")
    op.create_index("ix_dispatch_recipients_batch", "dispatch_recipients", columns)
