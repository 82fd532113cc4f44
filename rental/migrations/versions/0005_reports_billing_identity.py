"""organisations: billing address, VAT number and SIREN for invoice documents

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_address", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("vat_number", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("siren", sa.String(length=9), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("siren")
        batch_op.drop_column("vat_number")
        batch_op.drop_column("billing_address")
