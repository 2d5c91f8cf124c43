"""Receive a partner's file: refuse it at the door or store it with its sha256 and queue its parse.
The first stage of an upload; the parse job (portal.ingest.parse) takes it from there."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from typing import BinaryIO

from sqlalchemy import select

from portal import jobs
from portal.core import audit
from portal.core.storage import StorageUnavailable, get_storage
from portal.extensions import db
from portal.ingest.formats.detect import (
    ensure_seekable,
)
from portal.ingest.parse import parse_upload
from portal.models import (
    Partner,
    Upload,
    UploadStatus,
    User,
)
from portal.models.uploads import ACTIVE_STATUSES

log = logging.getLogger(__name__)


class UploadRefused(ValueError):
    """The file was not accepted at the door; `existing` is the earlier identical upload, if any;
    `unavailable` when the refusal is ours (storage down), not the file's."""

    def __init__(self, message: str, existing: Upload | None = None, *, unavailable: bool = False):
        super().__init__(message)
        self.existing = existing
        self.unavailable = unavailable


def display_name(filename: str | None) -> str:
    """The name shown for an upload: the last path component only, never used as a path."""
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    return (name or "upload")[:255]


def receive_upload(
    partner: Partner,
    stream: BinaryIO,
    filename: str,
    *,
    user: User | None,
    max_bytes: int,
    queue_parse: bool = True,
) -> Upload:
    """Store the original file with its sha256, record the upload and its parse job (caller commits).

    Refuses an empty file, a file over `max_bytes`, and a byte-identical copy of an upload that was
    not cancelled or failed (naming that upload). `queue_parse=False` records no job: the caller
    reads the file at once (a line-items batch, portal.ingest.batch).
    """
    stream = ensure_seekable(stream)
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(1024 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise UploadRefused(
                f"{display_name(filename)} is larger than the {max_bytes // (1024 * 1024)} MB limit."
            )
        digest.update(chunk)
    if size == 0:
        raise UploadRefused(f"{display_name(filename)} is empty.")
    sha256 = digest.hexdigest()
    existing = db.session.scalar(
        select(Upload)
        .where(Upload.partner_id == partner.id, Upload.sha256 == sha256, Upload.status.in_(ACTIVE_STATUSES))
        .order_by(Upload.id)
    )
    if existing is not None:
        raise UploadRefused(
            f"{display_name(filename)} is identical to upload #{existing.id} ({existing.filename}, "
            f"{existing.created_at:%Y-%m-%d %H:%M} UTC); it was not imported again.",
            existing=existing,
        )
    stream.seek(0)
    key = f"uploads/{partner.id}/{uuid.uuid4().hex}/original"
    try:
        stored_sha = get_storage().put(key, stream)
    except StorageUnavailable as exc:
        log.error("upload of %s not stored: %s", display_name(filename), exc)
        raise UploadRefused(
            f"{display_name(filename)} could not be stored: our file storage is not reachable right now. "
            "Nothing was uploaded; please try again in a few minutes.",
            unavailable=True,
        ) from exc
    if stored_sha != sha256:  # the stream changed under us: refuse rather than import unknown bytes
        raise UploadRefused(f"{display_name(filename)} changed while it was being stored; please retry.")
    upload = Upload(
        partner_id=partner.id,
        uploaded_by_id=user.id if user else None,
        filename=display_name(filename),
        storage_key=key,
        sha256=sha256,
        size_bytes=size,
        status=UploadStatus.RECEIVED,
    )
    db.session.add(upload)
    db.session.flush()
    if queue_parse:
        upload.job_id = jobs.enqueue(
            parse_upload, upload.id, queue="ingest", description=f"Parse upload #{upload.id}"
        ).id
    audit.record(
        "upload.received",
        subject=upload,
        actor=user,
        details={"filename": upload.filename, "size_bytes": size, "sha256": sha256},
    )
    return upload
