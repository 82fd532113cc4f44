"""people tallies by age band: the recipients' age on the send day, tallied at planning, so
that the send report no longer joins a million prospect ids with the base (issue 16)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 06:30:00

Tallies written before this revision have no age band: their report joins the base's birth
dates, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispatch_people_tallies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("age_band", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("ages_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dispatch_people_tallies", schema=None) as batch_op:
        batch_op.drop_column("ages_on")
        batch_op.drop_column("age_band")
