"""Alembic environment: runs against the engine the application configured."""

from __future__ import annotations

from alembic import context

import rental.models  # noqa: F401  (registers every table on Base.metadata)
from kit.db import Base, get_engine

target_metadata = Base.metadata

engine = context.config.attributes.get("engine") or get_engine()
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
