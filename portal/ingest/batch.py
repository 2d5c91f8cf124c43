"""Line items sent as data (the API's JSON batch) instead of a file: kept as a JSON original like any
upload and read at once by the same JSON parser, normalization and classification as a file."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal

from sqlalchemy import select

from portal.core import audit
from portal.extensions import db
from portal.ingest.formats.base import cell_text
from portal.ingest.headers import CANONICAL_FIELDS
from portal.ingest.mapping import MappingProfile
from portal.ingest.parse import read_upload
from portal.ingest.receive import UploadRefused, display_name, receive_upload
from portal.ingest.reports import row_messages
from portal.models import Partner, Upload, UploadRow, UploadStatus, User
from portal.models.base import utcnow

log = logging.getLogger(__name__)

MAX_BATCH_ITEMS = 10_000
# The fields of a batch item are the canonical field names; the profile maps each to itself. The
# employee is named by ID, by work email, or both (the ID first; an ID and an email naming two
# different employees is the row's problem), the customer by our code or the partner's alias,
# amounts as people write them in major units with '.' as the decimal separator.
BATCH_FIELDS = tuple(CANONICAL_FIELDS)
BATCH_PROFILE = MappingProfile(
    columns={name: name for name in BATCH_FIELDS}, employee_key="either", customer_match="code"
)


class BatchRefused(ValueError):
    """The batch as a whole was not accepted (too many items, a field we do not read); nothing stored."""


def batch_document(items: Sequence[Mapping[str, object]]) -> bytes:
    """The batch as the JSON array file it is kept as: one object per item with its fields in the
    canonical order, every value as the text a person would have typed (numbers by `cell_text`,
    the same conversion a spreadsheet's typed cell gets), so the stored original reads back as the
    exact rows that were judged."""
    if not items:
        raise BatchRefused("The batch has no items.")
    if len(items) > MAX_BATCH_ITEMS:
        raise BatchRefused(
            f"The batch has {len(items):,} items; at most {MAX_BATCH_ITEMS:,} are read a request."
        )
    rows = []
    for number, item in enumerate(items, start=1):
        unknown = sorted(set(item) - set(BATCH_FIELDS))
        if unknown:
            raise BatchRefused(
                f"Item {number} has the field '{unknown[0]}', which is not one of {', '.join(BATCH_FIELDS)}."
            )
        rows.append({name: _text(item[name]) for name in BATCH_FIELDS if name in item})
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float, Decimal, dt.date)) and not isinstance(value, bool):
        return cell_text(value)
    raise BatchRefused(f"A value of type {type(value).__name__} is not text or a number.")


def default_name(now: dt.datetime | None = None) -> str:
    """A batch's name when the sender gives none: unique, so that importing it never supersedes
    another batch (an upload supersedes the earlier ones of the same name, see importing.py)."""
    now = now or utcnow()
    return f"line-items-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}.json"


def receive_batch(
    partner: Partner,
    items: Sequence[Mapping[str, object]],
    *,
    user: User | None,
    max_bytes: int,
    name: str | None = None,
) -> Upload:
    """Receive a batch of line items as an upload and read it at once; returns the upload.

    The batch is stored as a JSON array (its original, with sha256) by `receive_upload` with the
    same refusals as a file (over `max_bytes`, identical to an active upload: UploadRefused), then
    read by `parse.read_upload` with BATCH_PROFILE and every item kept a row: each item gets the
    outcome a file's row would (accepted, quarantined, duplicate, conflict, rejected with its field
    and reason), a clean batch is imported and any other waits at needs_review for the partner,
    as a file would. Sending it again under the same `name` once corrected supersedes the earlier
    one. Commits twice, like a file and its parse job: the upload received, then its outcome.
    Raises BatchRefused (nothing recorded) for an empty or too long batch or an unknown field.
    """
    data = batch_document(items)
    filename = display_name(name) if name else default_name()
    if not filename.lower().endswith(".json"):
        filename = display_name(filename[:250] + ".json")
    upload = receive_upload(
        partner, io.BytesIO(data), filename, user=user, max_bytes=max_bytes, queue_parse=False
    )
    upload.status = UploadStatus.PARSING
    db.session.commit()
    upload_id = upload.id
    try:
        read_upload(upload, io.BytesIO(data), profile=BATCH_PROFILE, skip_trailing=False)
    except Exception:
        # No job will try again (a file's parse job would): end the upload as failed, so that it
        # is not left "parsing" for ever and the same batch can be sent again.
        db.session.rollback()
        _give_up(upload_id)
        raise
    return db.session.get(Upload, upload_id)


OUR_FAILURE = (
    "The batch could not be read because of a failure on our side; nothing was imported. Send it again."
)


def _give_up(upload_id: int) -> None:
    try:
        upload = db.session.get(Upload, upload_id)
        upload.status = UploadStatus.FAILED
        upload.message = OUR_FAILURE
        upload.parsed_at = utcnow()
        audit.record("upload.failed", subject=upload, details={"message": OUR_FAILURE})
        db.session.commit()
    except Exception:  # the database itself is down: the error being raised says more
        db.session.rollback()
        log.exception("batch upload %s could not be marked failed", upload_id)


def row_outcomes(upload: Upload) -> list[dict]:
    """Each row of an upload in order: {"row", "outcome", "partner_reference", "problems"}, where
    problems are {"field", "value", "message"} (a conflict names the line it clashes with)."""
    rows = db.session.scalars(
        select(UploadRow).where(UploadRow.upload_id == upload.id).order_by(UploadRow.row_number)
    )
    return [
        {
            "row": row.row_number,
            "outcome": row.outcome,
            "partner_reference": row.partner_reference,
            "problems": row_messages(row),
        }
        for row in rows
    ]


__all__ = [
    "BATCH_FIELDS",
    "BATCH_PROFILE",
    "MAX_BATCH_ITEMS",
    "BatchRefused",
    "UploadRefused",
    "batch_document",
    "receive_batch",
    "row_outcomes",
]
