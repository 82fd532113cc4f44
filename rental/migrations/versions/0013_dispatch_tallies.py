"""dispatch tallies: the ledger folded per batch and the recipients per department and sex,
for the send report (issue 16)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-15 10:00:00

Orders planned before this revision have no tallies: their report reads the ledger, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispatch_outcome_tallies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("control", sa.Boolean(), nullable=False),
        sa.Column("calendar", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error", sa.String(length=40), nullable=True),
        sa.Column("submitted_bin", sa.BigInteger(), nullable=True),
        sa.Column("final_bin", sa.BigInteger(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("first_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_final_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_outcome_tallies")),
    )
    op.create_index(
        "ix_dispatch_outcome_tallies_batch", "dispatch_outcome_tallies", ["order_id", "batch"]
    )
    op.create_table(
        "dispatch_people_tallies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("calendar", sa.String(length=24), nullable=False),
        sa.Column("department", sa.String(length=3), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_people_tallies")),
    )
    op.create_index("ix_dispatch_people_tallies_order", "dispatch_people_tallies", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_dispatch_people_tallies_order", table_name="dispatch_people_tallies")
    op.drop_table("dispatch_people_tallies")
    op.drop_index("ix_dispatch_outcome_tallies_batch", table_name="dispatch_outcome_tallies")
    op.drop_table("dispatch_outcome_tallies")
