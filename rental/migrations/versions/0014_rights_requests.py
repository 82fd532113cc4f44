"""rights of the people in the base: one-time codes, staff requests and their actions, the
erasures waiting for the next base refresh (issue 17)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kit.db  # noqa: F401  (custom column types)

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "base_erasures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("phone_hmac", sa.LargeBinary(length=32), nullable=False),
        sa.Column("requested_at", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("erased_in", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_base_erasures")),
        sa.UniqueConstraint("phone_hmac", name=op.f("uq_base_erasures_phone_hmac")),
    )
    op.create_table(
        "subject_challenges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("phone_hmac", sa.LargeBinary(length=32), nullable=False),
        sa.Column("address_mac", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("access_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("access_until", kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_challenges")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_subject_challenges_token_hash")),
        sa.UniqueConstraint("access_hash", name=op.f("uq_subject_challenges_access_hash")),
    )
    op.create_index(
        "ix_subject_challenges_hmac_at", "subject_challenges", ["phone_hmac", "created_at"]
    )
    op.create_index(
        "ix_subject_challenges_address_at", "subject_challenges", ["address_mac", "created_at"]
    )
    op.create_index("ix_subject_challenges_status", "subject_challenges", ["status"])
    op.create_table(
        "subject_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("phone_hmac", sa.LargeBinary(length=32), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_requests")),
    )
    op.create_index("ix_subject_requests_status_due", "subject_requests", ["status", "due_at"])
    op.create_table(
        "subject_request_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_request_actions")),
    )
    op.create_index("ix_subject_request_actions_request", "subject_request_actions", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_subject_request_actions_request", table_name="subject_request_actions")
    op.drop_table("subject_request_actions")
    op.drop_index("ix_subject_requests_status_due", table_name="subject_requests")
    op.drop_table("subject_requests")
    op.drop_index("ix_subject_challenges_status", table_name="subject_challenges")
    op.drop_index("ix_subject_challenges_address_at", table_name="subject_challenges")
    op.drop_index("ix_subject_challenges_hmac_at", table_name="subject_challenges")
    op.drop_table("subject_challenges")
    op.drop_table("base_erasures")
