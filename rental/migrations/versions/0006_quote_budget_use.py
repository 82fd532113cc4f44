"""quote_budget_use: the daily quote budget as an atomic counter per organisation and day

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quote_budget_use",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_quote_budget_use_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("organisation_id", "day", name=op.f("pk_quote_budget_use")),
    )


def downgrade() -> None:
    op.drop_table("quote_budget_use")
