"""Alembic migrations of the service database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from kit.db import get_engine


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.attributes["engine"] = get_engine()
    return cfg


def upgrade() -> None:
    """Bring the schema to the latest revision (idempotent; run at every start)."""
    command.upgrade(config(), "head")
