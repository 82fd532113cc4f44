"""Hosts that share one PostgreSQL start together: each migrates at start, and the database
ends at the latest revision without a process failing (docs/deploy.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.service import own_database

pytestmark = pytest.mark.skipif(
    not os.environ.get("RENTAL_TEST_DATABASE_URL"),
    reason="hosts share a database on PostgreSQL; SQLite's file belongs to one home",
)
HOSTS = 3
MIGRATIONS = Path(__file__).resolve().parents[2] / "rental" / "migrations" / "versions"


def test_hosts_starting_together_migrate_one_database_in_turn(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENTAL_")}
    url = own_database({}, "hosts")["RENTAL_DATABASE_URL"]  # a new, empty database
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "from rental.migrations import upgrade; upgrade()"],
            env=env | {"RENTAL_HOME": str(tmp_path / f"host-{i}"), "RENTAL_DATABASE_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(HOSTS)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * HOSTS, outputs
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert len(versions) == 1
    assert versions[0][0] == sorted(p.stem.split("_")[0] for p in MIGRATIONS.glob("0*.py"))[-1]
