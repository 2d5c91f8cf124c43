"""Bulk row writes: COPY on PostgreSQL, executemany on SQLite, inside the caller's transaction.

Used on paths that write many rows (ingestion), where one ORM object per row would be too slow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Table

from portal.extensions import db


def insert_rows(table: Table, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert `rows` (tuples in `columns` order) into `table` on the session's connection."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection  # psycopg 3 connection, same transaction
        count = 0
        cols = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    batch = list(rows)
    if batch:
        placeholders = ", ".join("?" for _ in columns)
        cols = ", ".join(f'"{c}"' for c in columns)
        raw = connection.connection.driver_connection  # sqlite3 connection, same transaction
        # Table and column names come from our own metadata, never from input; values are bound.
        sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({placeholders})'  # noqa: S608
        raw.executemany(sql, batch)
    return len(batch)
