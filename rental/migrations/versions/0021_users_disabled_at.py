"""users_disabled_at: a person's account can be disabled (a leaver) and enabled again

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kit.db import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
