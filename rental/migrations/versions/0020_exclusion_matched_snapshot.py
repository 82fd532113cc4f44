"""exclusion_matched_snapshot: the base snapshot a hashed exclusion file was matched against,
so that the worker matches it again after a refresh and counts refuse a stale match (issue 17)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 07:40:00

Hashed files matched before this revision have none: the worker matches them again with the
current snapshot at its next round.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exclusion_files") as batch:
        batch.add_column(sa.Column("matched_snapshot", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exclusion_files") as batch:
        batch.drop_column("matched_snapshot")
