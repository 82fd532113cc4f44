"""carrier status: what the workers last saw of each carrier

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kit.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carrier_status",
        sa.Column("carrier", sa.String(length=30), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("since", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("last_error_at", kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("carrier", name=op.f("pk_carrier_status")),
    )


def downgrade() -> None:
    op.drop_table("carrier_status")
