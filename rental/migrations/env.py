"""Alembic environment: runs against the engine the application configured."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

import rental.models  # noqa: F401  (registers every table on Base.metadata)
from kit.db import Base, get_engine

target_metadata = Base.metadata
# Hosts that share one PostgreSQL migrate in turn: each home's file lock (migrations.upgrade)
# only orders the processes of one host. A transaction-scoped advisory lock, released at commit.
MIGRATION_LOCK = 0x72656E74  # "rent"

engine = context.config.attributes.get("engine") or get_engine()
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
