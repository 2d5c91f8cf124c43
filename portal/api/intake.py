"""Line items in over the API: file uploads (multipart) and JSON batches, with per-row outcomes.

A file goes the partner upload page's way (`ingest.receive.receive_upload`: same size limit, same
refusals, its parse job queued); a JSON batch is received as an upload too and read at once by
`ingest.batch.receive_batch`, through the same parser, normalization and classification as a file.
Only partners send (as on the pages); an upload is read by its partner and by admins.
"""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, url_for
from flask_login import current_user
from flask_smorest import Blueprint
from flask_smorest.fields import Upload as UploadField
from sqlalchemy import select

from portal.api.auth import roles_required
from portal.api.idempotency import idempotent
from portal.api.pagination import PageArgs, paginate
from portal.api.problems import abort_problem
from portal.core.tenancy import scoped
from portal.extensions import db
from portal.ingest.batch import MAX_BATCH_ITEMS, BatchRefused, receive_batch, row_outcomes
from portal.ingest.receive import UploadRefused, receive_upload
from portal.ingest.reports import row_messages
from portal.models import RowOutcome, Upload, UploadRow, UploadStatus

blp = Blueprint("api_intake", __name__, description="Uploads and line-item batches from partners.")

PROBLEM_OUTCOMES = (RowOutcome.REJECTED.value, RowOutcome.CONFLICT.value, RowOutcome.QUARANTINED.value)


class RowErrorSchema(ma.Schema):
    field = ma.fields.String(required=True, metadata={"description": "The canonical field."})
    value = ma.fields.String(required=True, metadata={"description": "The value as sent."})
    reason = ma.fields.String(required=True, attribute="message")


class RowOutcomeSchema(ma.Schema):
    row = ma.fields.Integer(
        required=True,
        metadata={"description": "Where the row is: the file's row, or the item's position (from 1)."},
    )
    outcome = ma.fields.String(required=True, metadata={"enum": [o.value for o in RowOutcome]})
    partner_reference = ma.fields.String(allow_none=True, required=True)
    errors = ma.fields.List(ma.fields.Nested(RowErrorSchema), required=True, attribute="problems")


class CountsSchema(ma.Schema):
    rows_read = ma.fields.Integer(required=True)
    accepted = ma.fields.Integer(required=True)
    imported = ma.fields.Integer(required=True)
    duplicates = ma.fields.Integer(required=True)
    conflicts = ma.fields.Integer(required=True)
    rejected = ma.fields.Integer(required=True)
    quarantined = ma.fields.Integer(required=True)
    skipped = ma.fields.Integer(required=True, metadata={"description": "Rows after the data (totals...)."})


class UploadSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    url = ma.fields.String(required=True)
    filename = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": [s.value for s in UploadStatus]})
    summary = ma.fields.String(required=True, metadata={"description": "What happened, in one phrase."})
    message = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "A whole-file problem."}
    )
    file_format = ma.fields.String(allow_none=True, required=True)
    size_bytes = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)
    parsed_at = ma.fields.DateTime(allow_none=True, required=True)
    counts = ma.fields.Nested(CountsSchema, required=True)


class UploadDetailSchema(UploadSchema):
    problems = ma.fields.List(
        ma.fields.Nested(RowOutcomeSchema),
        required=True,
        metadata={"description": "Rows rejected, in conflict or held (unknown employee), in row order."},
    )
    next_cursor = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "Pass as `cursor` for more problems."}
    )


class UploadFileSchema(ma.Schema):
    file = UploadField(required=True, metadata={"description": "CSV, XLSX, JSON or DOCX."})


class BatchResultSchema(UploadSchema):
    rows = ma.fields.List(
        ma.fields.Nested(RowOutcomeSchema),
        required=True,
        metadata={"description": "Every item's outcome, in the order sent."},
    )


class _CellField(ma.fields.Field):
    """A value as a file cell holds it: text or a number (null = empty)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ma.ValidationError("Must be text or a number.")
        return value


def _cell(description: str):
    return _CellField(
        allow_none=True,
        metadata={"description": description, "oneOf": [{"type": "string"}, {"type": "number"}]},
    )


class LineItemSchema(ma.Schema):
    """One line item, with the portal's canonical field names; every value is checked as a file's
    cell would be, and a bad value is that row's problem, not the request's."""

    class Meta:
        unknown = ma.RAISE

    employee_external_id = _cell("The customer's employee ID (this or employee_email).")
    employee_email = _cell("The learner's work email (this or employee_external_id).")
    employee_name = _cell("Shown to the customer; optional.")
    customer_code = _cell("Our customer code, or your alias for it.")
    partner_reference = _cell("Your unique reference for the line.")
    expense_type = _cell("tuition, materials, tutoring, fees or other (or a usual wording).")
    amount = _cell("In currency units, '.' as decimal separator: send text to keep it exact.")
    currency = _cell("ISO 4217 code.")
    service_date = _cell("YYYY-MM-DD (other unambiguous forms are read as in files).")
    description = _cell("Course or item; optional.")
    term = _cell("Optional.")


class LineItemBatchSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    items = ma.fields.List(
        ma.fields.Nested(LineItemSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_BATCH_ITEMS),
        metadata={"description": f"1 to {MAX_BATCH_ITEMS:,} line items."},
    )
    name = ma.fields.String(
        validate=ma.validate.Length(min=1, max=200),
        metadata={
            "description": "A name for the batch (default: a unique one). Sending a corrected batch under "
            "the name of one that waits for review supersedes it, as a file of the same name would."
        },
    )


def _upload(upload: Upload) -> dict:
    return {
        "id": upload.id,
        "url": url_for("api_intake.upload", upload_id=upload.id),
        "filename": upload.filename,
        "status": upload.status.value,
        "summary": upload.status_summary.label,
        "message": upload.message,
        "file_format": upload.file_format,
        "size_bytes": upload.size_bytes,
        "sha256": upload.sha256,
        "created_at": upload.created_at,
        "parsed_at": upload.parsed_at,
        "counts": upload.counts(),
    }


def _refused(exc: UploadRefused):
    if exc.unavailable:
        abort_problem(503, title="Storage unavailable", detail=str(exc))
    if exc.existing is not None:
        abort_problem(
            409,
            detail=str(exc),
            errors=[{"field": "file", "message": url_for("api_intake.upload", upload_id=exc.existing.id)}],
        )
    abort_problem(422, detail=str(exc), errors=[{"field": "file", "message": str(exc)}])


@blp.route("/uploads", methods=["POST"])
@roles_required("partner")
@idempotent
@blp.arguments(UploadFileSchema, location="files")
@blp.response(
    202, UploadSchema, headers={"Location": {"description": "The upload's URL", "schema": {"type": "string"}}}
)
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def upload_create(files):
    """Send a file of line items.

    One file in the multipart field `file`, as on the upload page: stored with its sha256 and
    queued for parsing; 202 with the upload's URL (also in `Location`) to follow its status.

    Refused with the page's reasons: over the size limit (413), empty (422), identical to an
    upload of yours that was not cancelled or failed (409, naming it).
    """
    storage_file = files["file"]
    try:
        upload = receive_upload(
            current_user.partner,
            storage_file.stream,
            storage_file.filename or "upload",
            user=current_user,
            max_bytes=current_app.config["MAX_CONTENT_LENGTH"],
        )
    except UploadRefused as exc:
        db.session.rollback()
        _refused(exc)
    db.session.commit()
    return _upload(upload), 202, {"Location": url_for("api_intake.upload", upload_id=upload.id)}


@blp.route("/uploads/<id:upload_id>")
@roles_required("partner", "admin")
@blp.arguments(PageArgs, location="query")
@blp.response(200, UploadDetailSchema)
def upload(args, upload_id: int):
    """An upload's status, counts and problem rows.

    The problem rows (rejected, in conflict, or held for an unknown employee) with each field and
    reason, `limit` at a time in row order."""
    found = db.session.scalar(scoped(Upload).where(Upload.id == upload_id))
    if found is None:
        abort_problem(404)
    stmt = select(UploadRow).where(UploadRow.upload_id == found.id, UploadRow.outcome.in_(PROBLEM_OUTCOMES))
    page = paginate(stmt, key=UploadRow.row_number, limit=args["limit"], cursor=args["cursor"])
    problems = [
        {
            "row": row.row_number,
            "outcome": row.outcome,
            "partner_reference": row.partner_reference,
            "problems": row_messages(row),
        }
        for row in page.items
    ]
    return {**_upload(found), "problems": problems, "next_cursor": page.next_cursor}


@blp.route("/line-items", methods=["POST"])
@roles_required("partner")
@idempotent
@blp.arguments(LineItemBatchSchema)
@blp.response(
    201,
    BatchResultSchema,
    headers={"Location": {"description": "The batch's upload URL", "schema": {"type": "string"}}},
)
@blp.alt_response(409, response="CONFLICT")
def line_items(body):
    """Send up to 10,000 line items as JSON.

    They are judged at once, row by row, exactly as the rows of a file: 201 with every item's
    outcome (accepted, quarantined, duplicate, conflict, rejected with its field and reason). A
    clean batch is imported; any other waits for review as an upload (its URL in `Location`), like
    a file. An identical batch sent again is a 409 naming the first.
    """
    try:
        upload = receive_batch(
            current_user.partner,
            body["items"],
            user=current_user,
            max_bytes=current_app.config["MAX_CONTENT_LENGTH"],
            name=body.get("name"),
        )
    except BatchRefused as exc:
        db.session.rollback()
        abort_problem(422, detail=str(exc), errors=[{"field": "items", "message": str(exc)}])
    except UploadRefused as exc:
        db.session.rollback()
        _refused(exc)
    if upload.status == UploadStatus.FAILED:
        location = url_for("api_intake.upload", upload_id=upload.id)
        abort_problem(
            422,
            detail=f"{upload.message} The batch was recorded as failed upload {location}.",
            errors=[{"field": "items", "message": upload.message}],
        )
    location = url_for("api_intake.upload", upload_id=upload.id)
    return {**_upload(upload), "rows": row_outcomes(upload)}, 201, {"Location": location}
