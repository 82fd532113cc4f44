"""exclusion files: a customer's own numbers (as keyed hashes) left out of counts and draws
(issue 17, section 1)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kit.db  # noqa: F401  (custom column types)

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exclusion_files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("form", sa.String(length=12), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("matched_at", kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_exclusion_files_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exclusion_files")),
    )
    op.create_index("ix_exclusion_files_org", "exclusion_files", ["organisation_id", "created_at"])
    op.create_table(
        "exclusion_chunks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("keys", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["exclusion_files.id"],
            name=op.f("fk_exclusion_chunks_file_id_exclusion_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exclusion_chunks")),
    )
    op.create_index("ix_exclusion_chunks_file", "exclusion_chunks", ["file_id", "kind", "seq"])


def downgrade() -> None:
    op.drop_index("ix_exclusion_chunks_file", table_name="exclusion_chunks")
    op.drop_table("exclusion_chunks")
    op.drop_index("ix_exclusion_files_org", table_name="exclusion_files")
    op.drop_table("exclusion_files")
