"""The unit of work run again when the database gives up on it (a lock held past SQLite's busy
timeout): what the carrier took is recorded, not lost."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from kit.db import get_engine, retried
from rental.migrations import upgrade
from segmentation.repository import SuppressionRepository


def test_a_transaction_the_database_gave_up_on_is_run_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = get_engine()
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL waits for a row lock instead of giving up")
    upgrade()
    held = threading.Event()

    def hold_the_write_lock() -> None:  # another process's long write, past the busy timeout
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            held.set()
            time.sleep(10.8)  # busy_timeout is 10 s
            conn.rollback()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    held.wait(10)
    mac = os.urandom(32)
    attempts = []

    def work(session: Session) -> None:
        attempts.append(time.monotonic())
        SuppressionRepository(session).add(mac, "request", "test", datetime.now(UTC))

    with caplog.at_level(logging.WARNING, logger="kit.db"):
        retried(work, first_wait=0.5)
    holder.join()
    assert len(attempts) == 2  # the first gave up after the busy timeout
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM suppressions WHERE phone_hmac = :mac"), {"mac": mac}
        ).scalar()
    assert found == 1  # recorded once, by the second attempt
    assert "database busy (OperationalError): attempt 2" in caplog.text
    assert mac.hex() not in caplog.text


def test_a_mistake_is_not_run_again() -> None:
    attempts = []

    def work(session: Session) -> None:
        attempts.append(1)
        session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises((OperationalError, ProgrammingError)):  # SQLite, PostgreSQL
        retried(work)
    assert len(attempts) == 1  # not a passing failure: raised at once
