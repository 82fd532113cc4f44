from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import rental.models  # noqa: F401
from kit.db import Base, get_engine


def test_migrations_build_exactly_the_models(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from rental.migrations import config

    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = config()
    engine = create_engine(url)
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "head")
    command.upgrade(cfg, "head")  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert "quotes" in inspect(engine).get_table_names()


def test_the_latest_revision_read_without_alembic_is_alembics_head() -> None:
    """A start skips Alembic when the database is at `head()`: it must be Alembic's own head,
    and a database at another revision (or at none) must not be taken for one at head."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from rental import migrations

    cfg = migrations.config()
    assert migrations.head() == ScriptDirectory.from_config(cfg).get_current_head()
    assert migrations._at_head()  # noqa: SLF001 - this test's database is migrated
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert not migrations._at_head()  # noqa: SLF001
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    assert not migrations._at_head()  # noqa: SLF001
