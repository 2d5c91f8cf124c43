"""What a partner reads about an upload: its summary, the problem and held rows with their messages,
and the error file (the original problem rows plus an `error` column) to fix and resend."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy import select

from portal.core.csvsafe import safe_cell
from portal.core.storage import get_storage
from portal.extensions import db
from portal.ingest.formats.detect import (
    ensure_seekable,
    open_source,
)
from portal.models import (
    RowOutcome,
    Upload,
    UploadRow,
)


def problem_rows(upload: Upload, *, limit: int | None = None, offset: int = 0) -> list[UploadRow]:
    """Rows the partner must look at (rejected and conflicts), in file order."""
    stmt = (
        select(UploadRow)
        .where(
            UploadRow.upload_id == upload.id,
            UploadRow.outcome.in_([RowOutcome.REJECTED.value, RowOutcome.CONFLICT.value]),
        )
        .order_by(UploadRow.row_number)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt))


def held_rows(upload: Upload, *, limit: int | None = None, offset: int = 0) -> list[UploadRow]:
    """Rows held because their employee is not on the customer's roster, in file order."""
    stmt = (
        select(UploadRow)
        .where(UploadRow.upload_id == upload.id, UploadRow.outcome == RowOutcome.QUARANTINED.value)
        .order_by(UploadRow.row_number)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt))


def row_messages(row: UploadRow) -> list[dict]:
    """What is wrong with a staged row, as (field, value, message) dicts."""
    if row.outcome == RowOutcome.CONFLICT.value:
        where = (
            f"line #{row.existing_line_item_id} already imported"
            if row.existing_line_item_id
            else "an earlier row of this file"
        )
        return [
            {
                "field": "partner_reference",
                "value": row.partner_reference or "",
                "message": (
                    f"the reference is already used by {where} with different content; it was not overwritten"
                ),
            }
        ]
    return row.problems or []


def error_file(upload: Upload) -> Iterator[str]:
    """CSV text of the original problem rows plus an `error` column, for the partner to fix and resend."""
    problems = {
        row.row_number: "; ".join(f"{m['field']}: {m['message']}" for m in row_messages(row))
        for row in problem_rows(upload)
    }
    out = io.StringIO()
    writer = csv.writer(out)
    storage_stream = get_storage().open(upload.storage_key)
    try:
        with open_source(ensure_seekable(storage_stream), sheet=upload.sheet) as parsed:
            headers = list(parsed.headers)
            writer.writerow([safe_cell(h) for h in ["row", *headers, "error"]])
            for row in parsed.rows:
                if row.number in problems:
                    writer.writerow(
                        [
                            row.number,
                            *(safe_cell(row.cells.get(h, "")) for h in headers),
                            safe_cell(problems[row.number]),
                        ]
                    )
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
    finally:
        storage_stream.close()
    yield out.getvalue()


def summary(upload: Upload) -> dict:
    return {
        "upload_id": upload.id,
        "status": upload.status.value,
        "message": upload.message,
        **upload.counts(),
    }
