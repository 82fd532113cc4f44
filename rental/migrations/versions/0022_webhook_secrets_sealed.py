"""webhook_secrets_sealed: the endpoints' signing secrets kept sealed (AES-256-GCM under a key
derived from the HMAC key, webhooks/signing.seal), which takes more than 80 characters

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 10:05:00

Secrets stored before this revision stay as they are (the delivery reads both forms).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.String(length=200), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.String(length=80), existing_nullable=False)
