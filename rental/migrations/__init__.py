"""Alembic migrations of the service database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config

from kit.db import get_engine
from kit.settings import get_settings


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.attributes["engine"] = get_engine()
    return cfg


def upgrade() -> None:
    """Bring the schema to the latest revision (idempotent; run at every start). Processes of
    one home starting together (API, worker, scheduler) take turns."""
    home = get_settings().home
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "migrations.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(config(), "head")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
