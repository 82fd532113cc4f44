"""reservations: the two send-time indexes dropped (issue 16, planning speed)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 07:00:00

No query reads reservations by send time or by prospect: they are read whole while held
(`released_at IS NULL`, a scan either way) or by order (the unique (order_id, prospect_id)
index). Each index cost every draw a million entries to write and, on a re-draw, to delete.
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_reservations_send_at", table_name="reservations")
    op.drop_index("ix_reservations_prospect_send_at", table_name="reservations")


def downgrade() -> None:
    op.create_index("ix_reservations_prospect_send_at", "reservations", ["prospect_id", "send_at"])
    op.create_index("ix_reservations_send_at", "reservations", ["send_at"])
