"""ledger sex values: recipients drawn before this fix carry the engine's code ('0', '1')

The dispatch ledger took each recipient's sex from the engine, which stores it as its index in
the fixed vocabulary ['F', 'M'] (segmentation/engine.py): reports then counted every recipient
under neither sex. The codes become the values.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CODES = {"0": "F", "1": "M"}


def upgrade() -> None:
    update = sa.text("UPDATE dispatch_recipients SET sex = :value WHERE sex = :code")
    for code, value in CODES.items():
        op.execute(update.bindparams(value=value, code=code))


def downgrade() -> None:
    pass  # the values are right whatever the schema: nothing to undo
