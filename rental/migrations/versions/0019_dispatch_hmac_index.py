"""dispatch_hmac_index: each order's recipients' HMAC prefixes, sorted, written at planning, so
that the send report finds the window's opt-outs without a pass over the contact history
(issue 16)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 07:20:00

Orders planned before this revision have no index: their report reads the contact history, as
before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispatch_hmac_index",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("prefixes", sa.LargeBinary(), nullable=False),
        sa.Column("prospect_ids", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_hmac_index")),
        sa.UniqueConstraint("order_id", "part", name=op.f("uq_dispatch_hmac_index_order_id")),
    )


def downgrade() -> None:
    op.drop_table("dispatch_hmac_index")
