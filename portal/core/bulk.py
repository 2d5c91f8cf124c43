"""Bulk row writes: COPY on PostgreSQL, executemany on SQLite, inside the caller's transaction.

Used on paths that write many rows (ingestion), where one ORM object per row would be too slow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from sqlalchemy import JSON, BigInteger, Date, Integer, String, Table, Text

from portal.extensions import db

# A producer of rows yields FLUSH before it uses the database connection itself (e.g. a lookup
# query): on PostgreSQL the connection is busy with the COPY until that COPY is ended.
FLUSH = object()


# Column types whose values go in a binary COPY as psycopg dumps them: a third less work per row
# than the text format, where each value is formatted and escaped. Exact classes only (an Enum is a
# String too, and is not here). A JSON column's binary input is its text, so it takes a str.
_BINARY_COPY_TYPES = {
    Integer: "int4",
    BigInteger: "int8",
    String: "text",
    Text: "text",
    Date: "date",
    JSON: "text",
}


def binary_copy_types(table: Table, columns: Sequence[str]) -> list[str] | None:
    """The PostgreSQL types for a binary COPY of `columns`, or None when one of them has a type not
    in _BINARY_COPY_TYPES (then the text format is used)."""
    types = []
    for name in columns:
        column_type = table.c[name].type
        found = _BINARY_COPY_TYPES.get(type(column_type))
        if found is None:
            return None
        types.append(found)
    return types


def copy_rows(cursor, table: Table, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """One COPY of `rows` into `table` on a psycopg cursor (binary where the column types allow);
    returns the number of rows written. `rows` holds no FLUSH marker."""
    types = binary_copy_types(table, columns)
    cols = ", ".join(f'"{c}"' for c in columns)
    statement = f'COPY "{table.name}" ({cols}) FROM STDIN' + (" (FORMAT BINARY)" if types else "")
    count = 0
    with cursor.copy(statement) as copy:
        if types:
            copy.set_types(types)
        write_row = copy.write_row
        for row in rows:
            write_row(row)
            count += 1
    return count


def _until_flush(first: Sequence, rows: Iterator) -> Iterator[Sequence]:
    yield first
    for row in rows:  # the same iterator, continued until a FLUSH
        if row is FLUSH:
            return
        yield row


def insert_rows(
    table: Table, columns: Sequence[str], rows: Iterable[Sequence], *, batch_rows: int = 5000
) -> int:
    """Insert `rows` (tuples in `columns` order) into `table` on the session's connection.

    `rows` may be a generator of any length: PostgreSQL streams it through COPY (one per stretch
    between FLUSH markers), SQLite takes it `batch_rows` at a time, so memory stays bounded.
    """
    connection = db.session.connection()
    cols = ", ".join(f'"{c}"' for c in columns)
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection  # psycopg 3 connection, same transaction
        count = 0
        rows = iter(rows)
        for row in rows:
            if row is not FLUSH:  # one COPY per stretch between FLUSH markers
                with raw.cursor() as cursor:
                    count += copy_rows(cursor, table, columns, _until_flush(row, rows))
        return count
    placeholders = ", ".join("?" for _ in columns)
    raw = connection.connection.driver_connection  # sqlite3 connection, same transaction
    # Table and column names come from our own metadata, never from input; values are bound.
    sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({placeholders})'  # noqa: S608
    rows = (row for row in rows if row is not FLUSH)
    count = 0
    while batch := list(islice(rows, batch_rows)):
        raw.executemany(sql, batch)
        count += len(batch)
    return count
