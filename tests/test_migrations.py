from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import rental.models  # noqa: F401
from kit.db import Base


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
