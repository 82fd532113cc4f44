"""Writing a million rows in the caller's transaction at the speed of the database, not of
SQLAlchemy's per-value processing: one DB-API executemany of tuples on SQLite, `COPY` on
PostgreSQL (psycopg 3). Values stay bound (never spliced into the SQL text)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
from sqlalchemy import Executable, Table
from sqlalchemy.orm import Session


def insert_columns(
    session: Session,
    table: Table,
    columns: Mapping[str, Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
) -> int:
    """Insert one row per position of the equally long `columns` (plain str, int, bytes or
    None: what the DB-API takes as is), each row also holding `constants` (any value its
    column's type takes: a datetime, an enum; converted once). Returns how many rows."""
    conn = session.connection()
    dialect = conn.dialect
    fixed: dict[str, Any] = {}
    for name, value in (constants or {}).items():
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        fixed[name] = process(value) if process else value
    names = [*columns, *fixed]
    for name in names:
        table.c[name]  # noqa: B018  (a KeyError now, not a database error later)
    lists = [*columns.values(), *(repeat(v) for v in fixed.values())]
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of unequal lengths for {table.name}: {sorted(lengths)}")
    count = lengths.pop() if lengths else 0
    if count == 0:
        return 0
    rows = zip(*lists, strict=False)  # as long as the columns: the constants repeat
    if dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        # Binary: no text to format on our side nor to parse on the server's (bytea above all).
        statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
        types = [table.c[n].type.compile(dialect=dialect).split("(")[0].lower() for n in names]
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        return count
    marks = ", ".join("?" if dialect.paramstyle == "qmark" else "%s" for _ in names)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608
    conn.exec_driver_sql(sql, list(rows))
    return count


def read_ints(session: Session, stmt: Executable) -> np.ndarray:
    """The first column of `stmt`'s rows (integers) as an int64 array, fetched by the DB-API
    cursor at once: SQLAlchemy's per-row work costs seconds for a million rows."""
    result = session.connection().execute(stmt)
    try:
        rows = result.cursor.fetchall()  # the plain cursor: nothing was buffered before
    finally:
        result.close()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
