"""Many rows of one table in one statement, on both databases, with their ids when they are needed.

SQLite: SQLAlchemy's ``executemany``, with the ids SQLite would give written in where they are wanted. On
PostgreSQL a multi-row ``INSERT`` has a placeholder per value, and psycopg parses such a statement afresh every
time (a batch of 50 calls has ~18,000 values: that parse cost more than the server's work). So there the rows go
in as one array per column, ``INSERT INTO t (...) SELECT * FROM unnest(%s::type[], ...)``: the same short
statement for every batch, values adapted by psycopg's C code. Ids are taken from the table's sequence first
(``nextval`` once per row, in order) and written with the rows, so they come back in the rows' order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table, func, insert, select, text
from sqlalchemy.types import TypeDecorator


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], ids: bool = False) -> list[int]:
    """Insert ``rows`` (every row the same keys) into ``table``; their new ids in row order when ``ids``."""
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        if not ids:
            conn.execute(insert(table), list(rows))
            return []
        # the writer holds SQLite's write lock (BEGIN IMMEDIATE): the next ids are the ones SQLite would give
        # (after the largest id, or the largest ever given for an AUTOINCREMENT table); an INSERT ... RETURNING
        # in parameter order would be one statement per row
        start = int(conn.execute(select(func.max(table.c.id))).scalar() or 0)
        if table.dialect_options["sqlite"].get("autoincrement"):
            given = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table.name}).scalar()
            start = max(start, int(given or 0))
        new_ids = list(range(start + 1, start + 1 + len(rows)))
        conn.execute(insert(table), [r | {"id": i} for r, i in zip(rows, new_ids, strict=True)])
        return new_ids
    names = list(rows[0])
    new_ids: list[int] = []
    if ids:
        seq = text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")
        new_ids = [int(i) for i in conn.execute(seq, {"t": table.name, "n": len(rows)}).scalars()]
        names = ["id", *names]
    arrays, casts = [], []
    for name in names:
        column = table.c[name]
        values = new_ids if name == "id" else [r[name] for r in rows]
        kind = column.type.dialect_impl(conn.dialect)
        if isinstance(kind, JSON):  # None as SQLAlchemy stores it: JSON null unless the type says SQL NULL
            arrays.append(
                [None if v is None and kind.none_as_null else json.dumps(v, ensure_ascii=False) for v in values]
            )
            casts.append("text[]::jsonb[]")
            continue
        if isinstance(column.type, TypeDecorator):
            values = [column.type.process_bind_param(v, conn.dialect) for v in values]
        arrays.append(values)
        casts.append(f"{column.type.compile(dialect=conn.dialect)}[]")
    columns = ", ".join(names)
    params = ", ".join(f"%s::{c}" for c in casts)
    sql = f"INSERT INTO {table.name} ({columns}) SELECT * FROM unnest({params})"
    conn.exec_driver_sql(sql, tuple(arrays))
    return new_ids
