"""What keeps tests apart: each test runs in a home and a database of its own, cloned from a
migrated template, while the generated base (and the keys that encrypt it) is shared read-only
by every test and every xdist worker of the run. The process's caches that remember what one
home or database said are reset whenever the process is pointed at another.

Layout of one run (under the system's temporary directory):

    rental-tests-XXXX/            shared by the workers: base/, secrets/, base.lock
        gw0/ (or main/)           one per worker: session/ (the session's home),
                                  templates/ (SQLite templates), t1/, t2/... (the tests' homes)

Imported by tests/conftest.py before any project module reads its settings.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

RUN_VARIABLE = "PYTEST_RENTAL_RUN"  # set by the first process of a run, inherited by workers
POSTGRES = os.environ.get("RENTAL_TEST_DATABASE_URL") or None
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

_made_run = RUN_VARIABLE not in os.environ
if _made_run:
    os.environ[RUN_VARIABLE] = tempfile.mkdtemp(prefix="rental-tests-")
RUN = Path(os.environ[RUN_VARIABLE])
KEYS_LOCK = RUN / "keys.lock"  # held while the run's keys are made or copied into a home
WORKER_DIR = RUN / WORKER
SESSION_HOME = WORKER_DIR / "session"


def owns_run() -> bool:
    """This process created the run directory (the xdist controller, or pytest without
    workers): it removes it at the end."""
    return _made_run


def remove_run() -> None:
    shutil.rmtree(RUN, ignore_errors=True)


def database_name(name: str) -> str:
    """A PostgreSQL database of this worker (workers share the server)."""
    return f"rt_{WORKER}_{name}".lower()


def postgres_url(name: str) -> str:
    assert POSTGRES is not None
    return POSTGRES.rsplit("/", 1)[0] + "/" + database_name(name)


def settings_environment(home: Path, database: str | None) -> dict[str, str]:
    """The variables that point a process at a home and its database."""
    env = {"RENTAL_HOME": str(home)}
    if POSTGRES and database:
        env["RENTAL_DATABASE_URL"] = postgres_url(database)
    return env


def as_variable(value: Any) -> str:
    """A setting's value as its RENTAL_* variable spells it (pydantic-settings reads lists and
    dicts as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


def variables(overrides: Mapping[str, Any]) -> dict[str, str]:
    return {
        f"RENTAL_{name.upper()}": as_variable(v) for name, v in overrides.items() if v is not None
    }


def point_at_session_home() -> None:
    """The session's own home: what session fixtures (the app's start, the base) run against.
    Its secrets are the run's: the keys are made there once, before the base, and each home
    gets a copy. Called before any project module reads its settings."""
    for shared in ("base", "secrets"):
        (RUN / shared).mkdir(mode=0o700, exist_ok=True)
    if not SESSION_HOME.exists():
        SESSION_HOME.mkdir(parents=True)
        for shared in ("base", "secrets"):
            (SESSION_HOME / shared).symlink_to(RUN / shared, target_is_directory=True)
    os.environ.pop("RENTAL_DATABASE_URL", None)  # never a database of the environment
    os.environ.update(settings_environment(SESSION_HOME, "session"))


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by the processes of the run."""
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def furnish(home: Path) -> None:
    """A new home sees the shared base and holds a copy of the run's keys (the vault and HMAC
    keys the base was made with; what a test creates there stays its own)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "base").symlink_to(RUN / "base", target_is_directory=True)
    # Under the keys' lock: another worker may be writing a key there (temp file, then rename).
    with locked(KEYS_LOCK):
        shutil.copytree(RUN / "secrets", home / "secrets", ignore=shutil.ignore_patterns(".*"))


def forget_process_state() -> None:
    """Drop every cache of this process that holds what one home or database said: settings,
    the database engine, the clock's start, the Redis registration, eligibility, the
    idempotency purge timer. The loaded base (DuckDB) is kept: it is read-only."""
    from kit import clock, db, redisd
    from kit.settings import reset_settings
    from sales.idempotency import guard
    from segmentation import runtime

    db.dispose_engine()
    reset_settings()
    clock.reset()
    redisd.release()
    guard.purge_soon()
    runtime.forget_eligibility()


def dispose_engine() -> None:
    """Close the connections of the engine of the database this process points at."""
    from kit import db

    db.dispose_engine()


def override(values: Mapping[str, Any]) -> None:
    """Settings of this test from now on, for this process and the children it starts
    (None: the setting's default)."""
    dispose_engine()
    for name, value in variables(values).items():
        os.environ[name] = value
    for name in (f"RENTAL_{n.upper()}" for n, v in values.items() if v is None):
        os.environ.pop(name, None)
    forget_process_state()


@contextmanager
def environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ with `changes` (None: removed), its RENTAL_* variables restored after; the
    process's caches are forgotten on the way in and out. Child processes started inside
    inherit it."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("RENTAL_")}
    dispose_engine()
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        forget_process_state()
        yield
    finally:
        dispose_engine()
        for name in [k for k in os.environ if k.startswith("RENTAL_") and k not in saved]:
            del os.environ[name]
        os.environ.update(saved)
        forget_process_state()


class Databases:
    """The databases of this worker: migrated templates, and clones of them per test."""

    def __init__(self) -> None:
        self._admin: Any = None
        self._strategy: str | None = None
        self._names = itertools.count(1)
        self.templates: set[str] = set()

    # -- PostgreSQL ---------------------------------------------------------------------------

    def _execute(self, statement: str) -> Any:
        from sqlalchemy import create_engine, text

        if self._admin is None:
            self._admin = create_engine(POSTGRES or "", isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            result = conn.execute(text(statement))
            return result.scalar() if result.returns_rows else None

    def _copy(self) -> str:
        """A small template is copied faster file by file than through the WAL (PostgreSQL 15's
        default), and the suite clones one per test."""
        if self._strategy is None:
            version = int(self._execute("SHOW server_version_num"))
            self._strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""
        return self._strategy

    # -- both ---------------------------------------------------------------------------------

    def next_name(self) -> str:
        return f"t{next(self._names)}"

    def create(self, home: Path, name: str, template: str | None) -> None:
        """The database of `home` (named `name` on PostgreSQL): a clone of `template`, or
        empty when None."""
        if POSTGRES:
            self.drop(name)
            source = f' TEMPLATE "{database_name(template)}"{self._copy()}' if template else ""
            self._execute(f'CREATE DATABASE "{database_name(name)}"{source}')
        elif template:
            for suffix in ("-wal", "-shm"):
                (home / f"rental.db{suffix}").unlink(missing_ok=True)
            shutil.copyfile(WORKER_DIR / "templates" / f"{template}.db", home / "rental.db")

    def freeze(self, home: Path, name: str) -> None:
        """Make the database of `home` the template `name` (nothing may use it any more)."""
        self.templates.add(name)
        if POSTGRES:
            return  # the database itself is the template
        path = WORKER_DIR / "templates" / f"{name}.db"
        path.parent.mkdir(exist_ok=True)
        with sqlite3.connect(home / "rental.db") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        shutil.copyfile(home / "rental.db", path)

    def drop(self, name: str) -> None:
        if POSTGRES:
            self._execute(f'DROP DATABASE IF EXISTS "{database_name(name)}" WITH (FORCE)')

    def close(self) -> None:
        """Drop what this process made on the server (the tests' own are dropped after
        each)."""
        if self._admin is None:
            return
        for name in (*self.templates, "session"):
            self.drop(name)
        self._admin.dispose()


DATABASES = Databases()


class Home:
    """A home of its own and its database, for one test or one template."""

    def __init__(self, path: Path, database: str) -> None:
        self.path = path
        self.database = database

    @classmethod
    def new(cls, template: str | None, name: str | None = None) -> Home:
        name = name or DATABASES.next_name()
        path = WORKER_DIR / name
        shutil.rmtree(path, ignore_errors=True)
        furnish(path)
        DATABASES.create(path, name, template)
        return cls(path, name)

    def environment(self, **overrides: Any) -> dict[str, str | None]:
        env: dict[str, str | None] = {"RENTAL_DATABASE_URL": None}
        env |= settings_environment(self.path, self.database)
        env |= variables(overrides)
        return env

    @contextmanager
    def pointed_at(self, **overrides: Any) -> Iterator[Home]:
        """This process (and its children) on this home and database meanwhile."""
        with environment(self.environment(**overrides)):
            yield self

    def restore(self, template: str) -> None:
        """Replace this home's database with a new clone of `template` (in use: the engine
        is closed and the caches forgotten)."""
        dispose_engine()
        DATABASES.create(self.path, self.database, template)
        forget_process_state()

    def remove(self) -> None:
        DATABASES.drop(self.database)
        shutil.rmtree(self.path, ignore_errors=True)
