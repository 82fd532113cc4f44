"""quote audit: quotes.audited_at and quote_flags (pairs of quotes differing by a small group)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kit.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Quotes already recorded are left unaudited: the audit goes through those of the last
    # 30 days first.
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("audited_at", kit.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_quotes_audit_pending", ["audited_at", "created_at"], unique=False)
        batch_op.create_index("ix_quotes_exact_count", ["exact_count"], unique=False)
    op.create_table(
        "quote_flags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("quote_id", sa.String(length=36), nullable=False),
        sa.Column("earlier_quote_id", sa.String(length=36), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("earlier_organisation_id", sa.Integer(), nullable=False),
        sa.Column("difference", sa.Integer(), nullable=False),
        sa.Column("created_at", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["quote_id"], ["quotes.id"], name=op.f("fk_quote_flags_quote_id_quotes")
        ),
        sa.ForeignKeyConstraint(
            ["earlier_quote_id"],
            ["quotes.id"],
            name=op.f("fk_quote_flags_earlier_quote_id_quotes"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_quote_flags_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["earlier_organisation_id"],
            ["organisations.id"],
            name=op.f("fk_quote_flags_earlier_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quote_flags")),
        sa.UniqueConstraint("quote_id", "earlier_quote_id", name="uq_quote_flags_pair"),
    )
    with op.batch_alter_table("quote_flags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quote_flags_org_created", ["organisation_id", "created_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("quote_flags")
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index("ix_quotes_exact_count")
        batch_op.drop_index("ix_quotes_audit_pending")
        batch_op.drop_column("audited_at")
