"""Staging a file on PostgreSQL with its line items inserted as it goes, kept only if the file
turns out clean (the parse job's fast path for big files).

Staging is Python's work (reading and checking rows) and importing is the database's (one INSERT of
every accepted row, its keys and checks), so done one after the other each side waits for the
other. Here the rows are staged a chunk at a time, and while the database inserts one chunk's
accepted rows into line_items (sent in pipeline mode, not waited for), Python reads the next chunk.

The lines are inserted early, but the decision stays the same as without this path: the rows are
classified afterwards as if these lines did not exist (`CLASSIFY_IGNORING_OWN_LINES`), and the early
lines are kept only when the file is clean and they are exactly the rows the import would insert
(`settle`); otherwise they are deleted, in the same transaction, before anyone could see them, and
the normal path follows. A chunk holding a reference taken since (by another upload, or repeated in
the file) fails as a whole and stops the early inserts: the normal path decides those rows.

Used only for an upload that has no line items yet, so every line with its id was inserted here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import islice

import psycopg
from sqlalchemy import delete, exists, select, text

from portal.core.bulk import FLUSH, copy_rows
from portal.extensions import db
from portal.ingest.importing import LINE_COLUMNS, STAGED_LINE_VALUES
from portal.models import LineItem, RowOutcome, Upload, UploadRow
from portal.models.base import utcnow

CHUNK_ROWS = 5000  # rows staged, then inserted, at a time: a chunk's tuples stay a few MB

# A chunk's accepted rows, whose reference no line has yet, as line items (`_IMPORT` in
# importing.py, for a range of rows).
_INSERT_CHUNK = f"""
    INSERT INTO line_items ({LINE_COLUMNS})
    SELECT %(partner_id)s, {STAGED_LINE_VALUES}, %(now)s
    FROM upload_rows
    WHERE upload_id = %(upload_id)s AND outcome = 'accepted' AND employee_id IS NOT NULL
      AND row_number BETWEEN %(first)s AND %(last)s
      AND (SELECT li.id FROM line_items li
           WHERE li.partner_id = %(partner_id)s
             AND li.partner_reference = upload_rows.partner_reference) IS NULL
    """  # noqa: S608 (our own column lists; values are bound)

# Early lines whose row the classification then held back (a duplicate or a conflict): any means
# the early lines are not what the import would insert.
_LINES_OF_HELD_ROWS = text(
    """
    SELECT count(*) FROM upload_rows ur
    WHERE ur.upload_id = :upload_id AND ur.outcome IN ('duplicate', 'conflict')
      AND EXISTS (
        SELECT 1 FROM line_items li WHERE li.upload_id = :upload_id AND li.source_row = ur.row_number)
    """
)


@dataclass
class EarlyLines:
    """What the early inserts did: how many lines they added, and whether they went on to the end."""

    inserted: int = 0
    stopped: bool = False  # a rejected row or a taken reference: the rest is left to the import


def usable(upload: Upload) -> bool:
    """The early path applies on PostgreSQL, to an upload with no line items yet."""
    if db.session.connection().dialect.name != "postgresql":
        return False
    return not db.session.scalar(select(exists().where(LineItem.upload_id == upload.id)))


def stage(upload: Upload, rows: Iterator, columns: tuple[str, ...]) -> tuple[int, EarlyLines]:
    """Stage `rows` (upload_rows tuples in `columns` order, FLUSH markers between) a chunk at a
    time, inserting each chunk's accepted rows as line items while the next chunk is read.

    Returns the number of rows staged and what the early inserts did.
    """
    raw = db.session.connection().connection.driver_connection  # psycopg, the same transaction
    params = {"upload_id": upload.id, "partner_id": upload.partner_id, "now": utcnow()}
    outcome, number = columns.index("outcome"), columns.index("row_number")
    rejected = RowOutcome.REJECTED.value
    early = EarlyLines()
    staged = 0
    rows = iter(rows)
    with raw.cursor() as cursor, raw.cursor() as inserter:
        chunk, at_flush = _take(rows)
        while chunk or at_flush:
            if not chunk:  # a FLUSH came first: read on, outside a pipeline
                chunk, at_flush = _take(rows)
                continue
            staged += copy_rows(cursor, UploadRow.__table__, columns, chunk)
            if not early.stopped and any(row[outcome] == rejected for row in chunk):
                early.stopped = True  # the file will wait for review: none of it is imported now
            if early.stopped:
                chunk, at_flush = _take(rows)
                continue
            # After a FLUSH the rows' reader queries the database: that chunk is read outside a
            # pipeline, once this chunk's lines are in.
            overlap = not at_flush
            following = None
            try:
                with raw.pipeline() if overlap else nullcontext():
                    cursor.execute("SAVEPOINT early_lines")
                    inserter.execute(
                        _INSERT_CHUNK, {**params, "first": chunk[0][number], "last": chunk[-1][number]}
                    )
                    cursor.execute("RELEASE SAVEPOINT early_lines")
                    if overlap:
                        following = _take(rows)  # read while the database inserts
                early.inserted += inserter.rowcount
            except psycopg.IntegrityError:
                # A reference of the chunk is a line already: the import decides these rows.
                cursor.execute("ROLLBACK TO SAVEPOINT early_lines")
                cursor.execute("RELEASE SAVEPOINT early_lines")
                early.stopped = True
            chunk, at_flush = following if following is not None else _take(rows)
    return staged, early


def _take(rows: Iterator) -> tuple[list[tuple], bool]:
    """The next rows, up to CHUNK_ROWS; stops at a FLUSH marker without going past it (True)."""
    chunk = []
    for row in islice(rows, CHUNK_ROWS):
        if row is FLUSH:
            return chunk, True
        chunk.append(row)
    return chunk, False


def settle(upload: Upload, early: EarlyLines, *, clean: bool, accepted: int) -> bool:
    """Keep the early lines (True) when the file is clean and they are exactly the rows the import
    would insert, its accepted rows; else delete them (False) and leave the import to do its work.

    Called after the rows were classified as if the early lines did not exist.
    """
    if early.inserted == 0:
        return False
    if (
        clean
        and not early.stopped
        and early.inserted == accepted
        and db.session.scalar(_LINES_OF_HELD_ROWS, {"upload_id": upload.id}) == 0
    ):
        # Every early line's row is still accepted, and there are as many lines as accepted rows.
        return True
    db.session.execute(delete(LineItem).where(LineItem.upload_id == upload.id))
    return False
