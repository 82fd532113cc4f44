"""Writing a million rows in the caller's transaction at the speed of the database, not of
SQLAlchemy's per-value processing: one DB-API executemany of tuples on SQLite, `COPY` on
PostgreSQL (psycopg 3). Values stay bound (never spliced into the SQL text)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
from sqlalchemy import Executable, Table, bindparam, func, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from kit.db import executemany


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


def update_columns(
    session: Session,
    table: Table,
    key: str,
    columns: Mapping[str, Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
    where: Any = None,
) -> int:
    """Set, in the row whose `key` is each position's key, the `columns`' values at that
    position and the `constants`, where `where` also holds (a condition on `table`). One
    DB-API executemany on SQLite; one statement on PostgreSQL, the rows joined from one array
    per column (`UPDATE ... FROM unnest(...)`: no statement per row). The keys must be unique.
    Returns how many rows changed (-1: the driver cannot tell)."""
    keys = columns[key]
    if not keys:
        return 0
    values = {n: v for n, v in columns.items() if n != key}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        arrays = [
            bindparam(f"_{n}", list(v), type_=ARRAY(table.c[n].type)) for n, v in columns.items()
        ]
        rows = func.unnest(*arrays).table_valued(*columns).render_derived(name="v")
        stmt = update(table).where(table.c[key] == rows.c[key])
        stmt = stmt.values({n: rows.c[n] for n in values} | dict(constants or {}))
    else:
        stmt = update(table).where(table.c[key] == bindparam(f"_{key}"))
        stmt = stmt.values({n: bindparam(f"_{n}") for n in values} | dict(constants or {}))
    if where is not None:
        stmt = stmt.where(where)
    if conn.dialect.name == "postgresql":
        return int(conn.execute(stmt).rowcount)
    names = list(columns)
    params = [
        dict(zip([f"_{n}" for n in names], row, strict=True))
        for row in zip(*columns.values(), strict=True)
    ]
    return executemany(session, stmt, params)
