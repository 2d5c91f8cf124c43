"""The partner's decisions on a parsed upload: import the valid rows, cancel, or read it with a new mapping.
Each is one guarded UPDATE of the upload's status, so two tabs cannot both decide (caller commits)."""

from __future__ import annotations

from sqlalchemy import update

from portal import jobs
from portal.core import audit
from portal.extensions import db
from portal.ingest.importing import import_upload
from portal.ingest.parse import parse_upload
from portal.models import (
    Upload,
    UploadStatus,
    User,
)
from portal.models.base import utcnow


class UploadStateError(ValueError):
    """The action does not fit the upload's current status."""


def not_allowed(upload: Upload, action: str) -> str:
    """Why `action` cannot be done to the upload in its current status, in words for the page."""
    if upload.status == UploadStatus.SUPERSEDED:
        return (
            f"upload #{upload.id} was superseded by upload #{upload.superseded_by_id}, a later file "
            f"with the same name that was imported; it can no longer be {action}"
        )
    return f"upload #{upload.id} is {upload.status.label.lower()} and cannot be {action}"


def _claim(upload: Upload, *, allowed: tuple[UploadStatus, ...], new: UploadStatus, action: str) -> None:
    """Move the upload to `new` only if it is still in an `allowed` status (one guarded UPDATE).

    Guarded in SQL, not only in Python, so an upload superseded (or decided) by another
    transaction meanwhile is refused instead of being imported or cancelled as well.
    """
    claimed = db.session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.status.in_(allowed))
        .values(status=new)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        db.session.refresh(upload)
        raise UploadStateError(not_allowed(upload, action))
    upload.status = new


def import_valid_rows(upload: Upload, *, user: User | None) -> None:
    """The partner's "import the N valid rows" on an upload that needs review (caller commits)."""
    if upload.status != UploadStatus.NEEDS_REVIEW:
        raise UploadStateError(not_allowed(upload, "imported"))
    _claim(upload, allowed=(UploadStatus.NEEDS_REVIEW,), new=UploadStatus.IMPORTED, action="imported")
    import_upload(upload, user=user)


CANCEL_REASON_MAX = 500


def cancel_upload(upload: Upload, *, user: User | None, reason: str = "") -> None:
    """Cancel an upload that was not imported; its rows are kept for the record, nothing is imported.

    `reason` (optional, at most CANCEL_REASON_MAX characters) goes into the audit event and so into
    the upload's history.
    """
    reason = (reason or "").strip()
    if len(reason) > CANCEL_REASON_MAX:
        raise UploadStateError(f"the reason has {len(reason)} characters; at most {CANCEL_REASON_MAX}")
    cancellable = (UploadStatus.NEEDS_REVIEW, UploadStatus.NEEDS_MAPPING, UploadStatus.FAILED)
    if upload.status not in cancellable:
        raise UploadStateError(not_allowed(upload, "cancelled"))
    _claim(upload, allowed=cancellable, new=UploadStatus.CANCELLED, action="cancelled")
    upload.decided_at = utcnow()
    details = upload.counts() | ({"reason": reason} if reason else {})
    audit.record("upload.cancelled", subject=upload, actor=user, details=details)


def remap_upload(upload: Upload, *, user: User | None) -> None:
    """After a mapping was saved for an upload that needed one, parse it again (caller commits)."""
    _claim(
        upload,
        allowed=(UploadStatus.NEEDS_MAPPING,),
        new=UploadStatus.RECEIVED,
        action="read with a new mapping",
    )
    upload.job_id = jobs.enqueue(
        parse_upload, upload.id, queue="ingest", description=f"Parse upload #{upload.id}"
    ).id


def recheck_upload(upload: Upload, *, user: User | None, reason: str) -> None:
    """Parse an upload that needs review again, e.g. after an admin added the customer alias its
    rejected rows lacked; its staged rows are read anew (caller commits). Audited `upload.rechecked`."""
    _claim(
        upload,
        allowed=(UploadStatus.NEEDS_REVIEW,),
        new=UploadStatus.RECEIVED,
        action="checked again",
    )
    audit.record("upload.rechecked", subject=upload, actor=user, details={"reason": reason})
    upload.job_id = jobs.enqueue(
        parse_upload, upload.id, queue="ingest", description=f"Parse upload #{upload.id} again"
    ).id
