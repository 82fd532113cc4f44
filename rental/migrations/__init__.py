"""Alembic migrations of the service database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import fcntl
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from kit.db import get_engine
from kit.settings import get_settings

if TYPE_CHECKING:
    from alembic.config import Config

VERSIONS = Path(__file__).parent / "versions"
# `revision = "0020"`, or Alembic's template's `revision: str = '0020'`.
_REVISION = re.compile(
    r"""^(down_revision|revision)(?:: [^=]+)? = (None|["']([^"']+)["'])$""", re.MULTILINE
)


def config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.attributes["engine"] = get_engine()
    return cfg


def upgrade() -> None:
    """Bring the schema to the latest revision (idempotent; run at every start). Processes of
    one home starting together (API, worker, scheduler) take turns. A database already at the
    latest revision is left as it is without loading Alembic (a few tenths of a second of
    every start)."""
    if _at_head():
        return
    from alembic import command

    home = get_settings().home
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "migrations.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(config(), "head")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def head() -> str | None:
    """The latest revision, read from the scripts' `revision` and `down_revision` lines: the one
    no other follows. None when that is not one plain chain (Alembic then decides)."""
    revisions: dict[str, str | None] = {}
    for path in VERSIONS.glob("*.py"):
        found = dict((name, value) for name, _, value in _REVISION.findall(path.read_text()))
        if "revision" not in found or "down_revision" not in found:
            return None
        revisions[found["revision"]] = found["down_revision"] or None
    followed = set(revisions.values())
    heads = [r for r in revisions if r not in followed]
    return heads[0] if len(heads) == 1 and len(followed) == len(revisions) else None


def _at_head() -> bool:
    """Whether the database's recorded revision is the latest one (any doubt: no)."""
    latest = head()
    if latest is None:
        return False
    try:
        with get_engine().connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:  # no table yet: a new database
        return False
    return found == [latest]
