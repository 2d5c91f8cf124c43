"""Uploads of partner files, the rows staged from them, and partners' mapping profiles.

An upload keeps its original file (by storage key and sha256), the mapping version it was read
with, and one staged row per source row with its outcome, so every decision can be explained.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow
from portal.models.partners import Partner
from portal.models.users import User


class MappingProfileVersion(db.Model):
    """One saved version of a partner's mapping profile (the JSON of portal.ingest.mapping)."""

    __tablename__ = "mapping_profiles"
    __table_args__ = (UniqueConstraint("partner_id", "name", "version"),)
    tenant_columns = {"partner": "partner_id"}

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="default")
    version: Mapped[int] = mapped_column(Integer)
    profile: Mapped[dict] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    partner: Mapped[Partner] = relationship()
    created_by: Mapped[User | None] = relationship()


class UploadStatus(enum.StrEnum):
    RECEIVED = "received"  # stored, parse job recorded
    PARSING = "parsing"
    NEEDS_MAPPING = "needs_mapping"  # no profile covers the file's headers
    NEEDS_REVIEW = "needs_review"  # some rows rejected or in conflict: the partner decides
    IMPORTED = "imported"
    CANCELLED = "cancelled"
    FAILED = "failed"  # a whole-file problem: empty, unsupported, unreadable
    SUPERSEDED = "superseded"  # failed or needed review, then a later file of the same name was imported

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


ACTIVE_STATUSES = (
    UploadStatus.RECEIVED,
    UploadStatus.PARSING,
    UploadStatus.NEEDS_MAPPING,
    UploadStatus.NEEDS_REVIEW,
    UploadStatus.IMPORTED,
)
# An upload in one of these waits for someone; a later import of the same file name supersedes it.
SUPERSEDABLE_STATUSES = (UploadStatus.FAILED, UploadStatus.NEEDS_REVIEW)


class Upload(db.Model):
    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_partner_sha256", "partner_id", "sha256"),)
    tenant_columns = {"partner": "partner_id"}

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(255))  # shown to people, never used as a path
    storage_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[UploadStatus] = mapped_column(
        Enum(UploadStatus, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=UploadStatus.RECEIVED,
    )
    file_format: Mapped[str | None] = mapped_column(String(16))
    sheet: Mapped[str | None] = mapped_column(String(100))
    headers: Mapped[list | None] = mapped_column(JSON)
    mapping_profile_id: Mapped[int | None] = mapped_column(ForeignKey("mapping_profiles.id"))
    message: Mapped[str | None] = mapped_column(Text)  # the whole-file problem, if any
    # Rows after the data that are not line items (totals, signatures), skipped and listed:
    # {"row", "reason", "text"} each (uploads parsed before these were listed keep plain text).
    notes: Mapped[list | None] = mapped_column(JSON)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[str | None] = mapped_column(String(36))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    parsed_at = mapped_column(UTCDateTime, nullable=True)
    decided_at = mapped_column(UTCDateTime, nullable=True)

    partner: Mapped[Partner] = relationship()
    uploaded_by: Mapped[User | None] = relationship(foreign_keys=[uploaded_by_id])
    mapping_profile: Mapped[MappingProfileVersion | None] = relationship()
    superseded_by: Mapped[Upload | None] = relationship(
        remote_side="Upload.id", foreign_keys=[superseded_by_id]
    )

    @property
    def in_progress(self) -> bool:
        return self.status in (UploadStatus.RECEIVED, UploadStatus.PARSING)

    @property
    def status_summary(self) -> StatusSummary:
        return status_summary(self)

    @property
    def skipped_rows(self) -> list[dict]:
        """The rows skipped after the data, each {"row", "reason", "text"}; see `notes`."""
        return [
            n if isinstance(n, dict) else {"row": None, "reason": None, "text": str(n)}
            for n in self.notes or []
        ]

    @property
    def skipped(self) -> int:
        return len(self.notes or [])

    def counts(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
            "quarantined": self.quarantined,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class StatusSummary:
    """What happened to an upload in one phrase, and how it should look (see `status_summary`)."""

    label: str
    tone: str  # success | warning | danger | neutral


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _parse_job(upload: Upload):
    if not upload.job_id:
        return None
    from portal.models.jobs import JobRecord  # models.jobs is a sibling model module; kept lazy

    return db.session.get(JobRecord, upload.job_id)


def status_summary(upload: Upload) -> StatusSummary:
    """The one phrase shown for an upload everywhere (list row, detail page, polling fragment).

    Says what happened with the counts that matter, so "Imported" is never shown green for a file
    of which nothing was imported: held rows (unknown employees) make it a warning, and an upload
    that imported nothing and holds nothing is neutral.
    """
    status = upload.status
    if status in (UploadStatus.RECEIVED, UploadStatus.PARSING):
        job = _parse_job(upload)
        if job is not None and job.status.value == "failed":
            # Not the file: the database, storage or queue failed on every attempt. Nothing was
            # imported; an administrator can run the job again from Admin -> Jobs.
            return StatusSummary(
                f"Parsing stopped after {job.attempts} attempts (a problem on our side, not in the file); "
                "nothing was imported, and an administrator can try it again",
                "danger",
            )
        reason = job.retry_reason if job is not None else None
        if reason:
            return StatusSummary(f"Parsing again after {reason}…", "neutral")
        return StatusSummary("Parsing…", "neutral")
    if status == UploadStatus.NEEDS_MAPPING:
        return StatusSummary("Needs mapping: no saved mapping covers the columns", "warning")
    if status == UploadStatus.FAILED:
        return StatusSummary(f"Failed: {upload.message or 'the file could not be read'}", "danger")
    if status == UploadStatus.CANCELLED:
        return StatusSummary("Cancelled: nothing imported", "neutral")
    if status == UploadStatus.SUPERSEDED:
        if upload.superseded_by_id:
            return StatusSummary(f"Superseded by upload #{upload.superseded_by_id}", "neutral")
        return StatusSummary("Superseded", "neutral")
    if status == UploadStatus.NEEDS_REVIEW:
        problems = []
        if upload.rejected:
            problems.append(_count(upload.rejected, "row") + " rejected")
        if upload.conflicts:
            problems.append(_count(upload.conflicts, "row") + " in conflict")
        return StatusSummary("Needs review: " + ", ".join(problems or ["rows to check"]), "warning")
    # Imported: what went in, what waits, what was left out.
    parts = [f"Imported {upload.imported}"]
    if upload.quarantined:
        parts.append(
            f"{upload.quarantined} held for "
            + ("an unknown employee" if upload.quarantined == 1 else "unknown employees")
        )
    left_out = upload.rejected + upload.conflicts
    if left_out:
        parts.append(_count(left_out, "row") + " with problems not imported")
    if upload.duplicates:
        parts.append(_count(upload.duplicates, "duplicate") + " skipped")
    if upload.skipped:
        parts.append(_count(upload.skipped, "row") + " after the data skipped (not line items)")
    if upload.quarantined:
        tone = "warning"
    elif upload.imported:
        tone = "success"
    else:
        tone = "neutral"
    return StatusSummary(", ".join(parts), tone)


class RowOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # same reference and content as a line we have: skipped
    CONFLICT = "conflict"  # same reference, different content: held, never overwritten
    REJECTED = "rejected"  # a field is wrong; see problems
    QUARANTINED = "quarantined"  # unknown employee: held until an admin maps or creates them
    RELEASED = "released"  # was quarantined; imported after the employee was resolved


class UploadRow(db.Model):
    """One source row of an upload, normalized, with its outcome (written in bulk, never per ORM object)."""

    __tablename__ = "upload_rows"
    __table_args__ = (
        Index("ix_upload_rows_upload_outcome", "upload_id", "outcome", "row_number"),
        # Partial: a file's rows are nearly all accepted, and only held rows are looked up by
        # customer and employee; each index on this table costs every staged row (bench/ingest.py).
        Index(
            "ix_upload_rows_quarantine",
            "customer_id",
            "employee_external_id",
            postgresql_where=text("outcome = 'quarantined'"),
            sqlite_where=text("outcome = 'quarantined'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # The upload's id, without a foreign key: only the parse job writes these rows, in bulk, for the
    # upload it holds in the same transaction, and uploads are never deleted; the key's check, one
    # per staged row, was the largest single cost of staging a big file (bench/ingest.py).
    upload_id: Mapped[int] = mapped_column(Integer)
    row_number: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int | None] = mapped_column(Integer)
    employee_id: Mapped[int | None] = mapped_column(Integer)
    employee_external_id: Mapped[str | None] = mapped_column(String(64))
    # The learner's work email, lower-cased (the key of rows from profiles that identify by email).
    employee_email: Mapped[str | None] = mapped_column(String(254))
    employee_name: Mapped[str | None] = mapped_column(String(200))
    partner_reference: Mapped[str | None] = mapped_column(String(100))
    expense_type: Mapped[str | None] = mapped_column(String(16))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    service_date: Mapped[dt.date | None] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(String(500))
    term: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    problems: Mapped[list | None] = mapped_column(JSON)  # [{"field", "value", "message"}]
    existing_line_item_id: Mapped[int | None] = mapped_column(BigInteger)
