"""Staged rows to line items, exactly once: one INSERT ... SELECT guarded by the (partner,
partner_reference) unique key, the counts, and the earlier same-named uploads it supersedes."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError

from portal.core import audit
from portal.extensions import db
from portal.models import (
    LineItem,
    RowOutcome,
    Upload,
    UploadRow,
    UploadStatus,
    User,
)
from portal.models.base import UTCDateTime, utcnow
from portal.models.uploads import SUPERSEDABLE_STATUSES

# Held rows (accepted or quarantined) whose reference is already a line item of another row become
# duplicates (same content) or conflicts. `{own}` and `{others}` say which lines count: all but the
# row's own (a job run again finds the lines of its first run), or only other uploads' (the parse
# job's early lines, portal/ingest/early_lines.py, are left out of the decision).
_CLASSIFY = """
    UPDATE upload_rows SET
      existing_line_item_id = (
        SELECT li.id FROM line_items li
        WHERE li.partner_id = :partner_id AND li.partner_reference = upload_rows.partner_reference{own}),
      outcome = CASE WHEN EXISTS (
          SELECT 1 FROM line_items li
          WHERE li.partner_id = :partner_id AND li.partner_reference = upload_rows.partner_reference{own}
            AND li.fingerprint = upload_rows.fingerprint)
        THEN 'duplicate' ELSE 'conflict' END
    WHERE upload_id = :upload_id AND outcome IN ({outcomes})
      AND EXISTS (
        SELECT 1 FROM line_items li
        WHERE li.partner_id = :partner_id AND li.partner_reference = upload_rows.partner_reference
          AND {others})
    """
_ALL_BUT_OWN_ROW = {
    "own": "",
    "others": "NOT (li.upload_id = :upload_id AND li.source_row = upload_rows.row_number)",
}
_OTHER_UPLOADS = {"own": " AND li.upload_id <> :upload_id", "others": "li.upload_id <> :upload_id"}
CLASSIFY_AGAINST_LINES = text(_CLASSIFY.format(outcomes="'accepted', 'quarantined'", **_ALL_BUT_OWN_ROW))
CLASSIFY_IGNORING_OWN_LINES = text(_CLASSIFY.format(outcomes="'accepted', 'quarantined'", **_OTHER_UPLOADS))
_CLASSIFY_QUARANTINED = text(_CLASSIFY.format(outcomes="'quarantined'", **_ALL_BUT_OWN_ROW))


def refresh_counts(upload: Upload) -> None:
    by_outcome = dict(
        db.session.execute(
            select(UploadRow.outcome, func.count())
            .where(UploadRow.upload_id == upload.id)
            .group_by(UploadRow.outcome)
        ).all()
    )
    upload.rows_read = sum(by_outcome.values())
    upload.accepted = by_outcome.get("accepted", 0)
    upload.duplicates = by_outcome.get("duplicate", 0)
    upload.conflicts = by_outcome.get("conflict", 0)
    upload.rejected = by_outcome.get("rejected", 0)
    upload.quarantined = by_outcome.get("quarantined", 0)
    upload.imported = db.session.scalar(
        select(func.count(LineItem.id)).where(LineItem.upload_id == upload.id)
    )


# A staged row as a line item: the line's columns, and the staged values between the partner and
# the moment (also early_lines.py's chunk insert).
LINE_COLUMNS = """partner_id, customer_id, employee_id, partner_reference, expense_type,
        amount_minor, currency, service_date, description, term, upload_id, source_row, fingerprint,
        created_at"""
STAGED_LINE_VALUES = """customer_id, employee_id, partner_reference, expense_type, amount_minor,
        currency, service_date, COALESCE(description, ''), term, upload_id, row_number, fingerprint"""
_INSERT_SELECT = f"""
    INSERT INTO line_items ({LINE_COLUMNS})
    SELECT :partner_id, {STAGED_LINE_VALUES}, :now
    FROM upload_rows
    WHERE upload_id = :upload_id AND outcome = :outcome AND employee_id IS NOT NULL
    """  # noqa: S608 (our own column lists; values are bound)
_IMPORT = text(_INSERT_SELECT).bindparams(bindparam("now", type_=UTCDateTime()))
_IMPORT_SKIPPING_TAKEN = text(
    _INSERT_SELECT + "    ON CONFLICT (partner_id, partner_reference) DO NOTHING\n"
).bindparams(bindparam("now", type_=UTCDateTime()))


def insert_lines(upload: Upload, outcome: str) -> None:
    """Import the upload's rows of `outcome` that have an employee, each at most once.

    The rows were classified against the line items just before, so a plain INSERT is tried first,
    in a savepoint: on PostgreSQL it is a quarter faster than ON CONFLICT DO NOTHING (bench/ingest.py:
    1M rows in 30 s instead of 40 s). The (partner, reference) unique key still guards every row; if
    another upload imported one of these references since, the INSERT fails as a whole, the
    savepoint rolls it back and the rows go in again skipping the references taken.
    """
    params = {"upload_id": upload.id, "partner_id": upload.partner_id, "outcome": outcome, "now": utcnow()}
    try:
        with db.session.begin_nested():
            inserted = db.session.execute(_IMPORT, params).rowcount
    except IntegrityError:
        inserted = db.session.execute(_IMPORT_SKIPPING_TAKEN, params).rowcount
    # A line another upload imported in the meantime made ours skip: say so instead of counting it.
    # An accepted row always names its employee, so when every accepted row became a line, none
    # of them can clash (the unique key holds each reference for it) and only the quarantined rows
    # are checked: one pass less over a big file.
    if outcome == RowOutcome.ACCEPTED.value and inserted == _count(upload, outcome):
        db.session.execute(_CLASSIFY_QUARANTINED, params)
    else:
        db.session.execute(CLASSIFY_AGAINST_LINES, params)


def _count(upload: Upload, outcome: str) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(UploadRow)
        .where(UploadRow.upload_id == upload.id, UploadRow.outcome == outcome)
    )


def import_upload(upload: Upload, *, user: User | None, lines_inserted: bool = False) -> None:
    """Import the upload's accepted rows. `lines_inserted`: they are line items already (the parse
    job's early lines, kept by early_lines.settle); only the held rows are checked again."""
    if lines_inserted:
        db.session.execute(_CLASSIFY_QUARANTINED, {"upload_id": upload.id, "partner_id": upload.partner_id})
    else:
        insert_lines(upload, RowOutcome.ACCEPTED.value)
    refresh_counts(upload)
    upload.status = UploadStatus.IMPORTED
    upload.decided_at = utcnow()
    audit.record("upload.imported", subject=upload, actor=user, details=upload.counts())
    supersede_earlier(upload, user=user)


def supersede_earlier(upload: Upload, *, user: User | None) -> list[int]:
    """Mark the partner's earlier uploads of the same file name that still wait as superseded.

    Called when `upload` is imported (fully or partly), in the same transaction. An earlier upload
    with the same name (case-insensitive) that failed or needs review is what the new file
    corrects: it stops counting as needing action, says which upload replaced it, and can no longer
    be imported. Returns the ids of the uploads superseded, each with an `upload.superseded` event.
    """
    name = upload.filename.casefold()  # in Python: SQLite's lower() folds ASCII only
    candidates = [
        upload_id
        for upload_id, filename in db.session.execute(
            select(Upload.id, Upload.filename).where(
                Upload.partner_id == upload.partner_id,
                Upload.id < upload.id,
                Upload.status.in_(SUPERSEDABLE_STATUSES),
            )
        )
        if filename.casefold() == name
    ]
    if not candidates:
        return []
    superseded = db.session.scalars(
        update(Upload)
        .where(Upload.id.in_(candidates), Upload.status.in_(SUPERSEDABLE_STATUSES))
        .values(status=UploadStatus.SUPERSEDED, superseded_by_id=upload.id, decided_at=utcnow())
        .returning(Upload.id)
        .execution_options(synchronize_session=False)
    ).all()
    for old_id in sorted(superseded):
        old = db.session.get(Upload, old_id, populate_existing=True)
        audit.record(
            "upload.superseded",
            subject=old,
            actor=user,
            details={"superseded_by": upload.id, "filename": upload.filename},
        )
    return sorted(superseded)
