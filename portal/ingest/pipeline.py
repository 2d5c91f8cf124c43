"""From a partner's file to line items: receive, parse and stage every row, then import exactly once.

Rows are staged in bulk with their outcome (accepted, duplicate, conflict, rejected, quarantined);
duplicates and conflicts are found with set-based SQL; the import is one INSERT ... SELECT guarded by
the (partner, partner_reference) unique key, so re-running any step never inserts a line twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import bindparam, delete, func, select, text, update

from portal import jobs
from portal.core import audit
from portal.core.bulk import FLUSH, insert_rows
from portal.core.csvsafe import safe_cell
from portal.core.storage import StorageUnavailable, get_storage
from portal.extensions import db
from portal.ingest.formats.base import IngestError
from portal.ingest.formats.detect import (
    as_ingest_error,
    ensure_seekable,
    is_infrastructure_error,
    open_source,
)
from portal.ingest.mapping import (
    MappingError,
    MappingProfile,
    NormalizedRow,
    RowNormalizer,
    fingerprint_values,
    normalize_row,
)
from portal.models import (
    Customer,
    Employee,
    LineItem,
    MappingProfileVersion,
    Partner,
    RowOutcome,
    Upload,
    UploadRow,
    UploadStatus,
    User,
)
from portal.models.base import UTCDateTime, utcnow
from portal.models.uploads import ACTIVE_STATUSES, SUPERSEDABLE_STATUSES

CHUNK_ROWS = 5000
STAGED_COLUMNS = (
    "upload_id",
    "row_number",
    "outcome",
    "customer_id",
    "employee_id",
    "employee_external_id",
    "employee_name",
    "partner_reference",
    "expense_type",
    "amount_minor",
    "currency",
    "service_date",
    "description",
    "term",
    "fingerprint",
    "problems",
)
HELD = (RowOutcome.ACCEPTED.value, RowOutcome.QUARANTINED.value)
log = logging.getLogger(__name__)


class UploadRefused(ValueError):
    """The file was not accepted at the door; `existing` is the earlier identical upload, if any;
    `unavailable` when the refusal is ours (storage down), not the file's."""

    def __init__(self, message: str, existing: Upload | None = None, *, unavailable: bool = False):
        super().__init__(message)
        self.existing = existing
        self.unavailable = unavailable


class UploadStateError(ValueError):
    """The action does not fit the upload's current status."""


# --- receiving ------------------------------------------------------------------------------------


def display_name(filename: str | None) -> str:
    """The name shown for an upload: the last path component only, never used as a path."""
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    return (name or "upload")[:255]


def receive_upload(
    partner: Partner, stream: BinaryIO, filename: str, *, user: User | None, max_bytes: int
) -> Upload:
    """Store the original file with its sha256, record the upload and its parse job (caller commits).

    Refuses an empty file, a file over `max_bytes`, and a byte-identical copy of an upload that was
    not cancelled or failed (naming that upload).
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


# --- mapping profiles -----------------------------------------------------------------------------


def latest_profiles(partner_id: int) -> list[MappingProfileVersion]:
    """The newest version of each of the partner's named profiles, most recently saved first."""
    newest = (
        select(MappingProfileVersion.name, func.max(MappingProfileVersion.version).label("version"))
        .where(MappingProfileVersion.partner_id == partner_id)
        .group_by(MappingProfileVersion.name)
        .subquery()
    )
    return list(
        db.session.scalars(
            select(MappingProfileVersion)
            .join(
                newest,
                (MappingProfileVersion.name == newest.c.name)
                & (MappingProfileVersion.version == newest.c.version),
            )
            .where(MappingProfileVersion.partner_id == partner_id)
            .order_by(MappingProfileVersion.created_at.desc(), MappingProfileVersion.id.desc())
        )
    )


def choose_profile(partner_id: int, headers: list[str]) -> MappingProfileVersion | None:
    for version in latest_profiles(partner_id):
        if MappingProfile.from_json_dict(version.profile).covers(headers):
            return version
    return None


def save_mapping(
    partner: Partner, data: dict, *, name: str = "default", user: User | None = None
) -> MappingProfileVersion:
    """Validate and save a new version of the partner's profile `name`; raises MappingError.

    The audit event keeps the previous and the new profile, so a change can be read as a diff.
    """
    profile = MappingProfile.from_json_dict(data)
    name = (name or "default").strip()[:64] or "default"
    previous = db.session.scalar(
        select(MappingProfileVersion)
        .where(MappingProfileVersion.partner_id == partner.id, MappingProfileVersion.name == name)
        .order_by(MappingProfileVersion.version.desc())
        .limit(1)
    )
    version = MappingProfileVersion(
        partner_id=partner.id,
        name=name,
        version=(previous.version + 1) if previous else 1,
        profile=profile.to_json_dict(),
        created_by_id=user.id if user else None,
    )
    db.session.add(version)
    db.session.flush()
    audit.record(
        "mapping.saved",
        subject=version,
        subject_type="MappingProfile",
        partner_id=partner.id,
        actor=user,
        details={
            "name": name,
            "version": version.version,
            "before": previous.profile if previous else None,
            "after": version.profile,
        },
    )
    return version


def remap_upload(upload: Upload, *, user: User | None) -> None:
    """After a mapping was saved for an upload that needed one, parse it again (caller commits)."""
    if upload.status != UploadStatus.NEEDS_MAPPING:
        raise UploadStateError(not_allowed(upload, "read with a new mapping"))
    upload.status = UploadStatus.RECEIVED
    upload.job_id = jobs.enqueue(
        parse_upload, upload.id, queue="ingest", description=f"Parse upload #{upload.id}"
    ).id


# --- parsing and staging --------------------------------------------------------------------------


@dataclass
class _Lookups:
    """Customers by code and employees by (customer, external id), loaded once per customer."""

    customers: dict[str, int]
    employees: dict[int, dict[str, int]]

    @classmethod
    def load(cls) -> _Lookups:
        return cls(dict(db.session.execute(select(Customer.code, Customer.id)).all()), {})

    def employees_of(self, customer_id: int) -> dict[str, int]:
        known = self.employees.get(customer_id)
        if known is None:
            known = dict(
                db.session.execute(
                    select(Employee.external_id, Employee.id).where(Employee.customer_id == customer_id)
                ).all()
            )
            self.employees[customer_id] = known
        return known

    def employee_id(self, customer_id: int, external_id: str) -> int | None:
        return self.employees_of(customer_id).get(external_id)


def _problems_json(problems) -> str:
    return json.dumps([{"field": p.field, "value": p.value, "message": p.message} for p in problems])


def _rejected(upload_id: int, number: int, problems) -> tuple:
    return (upload_id, number, RowOutcome.REJECTED.value) + (None,) * 12 + (_problems_json(problems),)


def _unknown_customer(upload_id: int, number: int, code: str, reference: str) -> tuple:
    problem = {"field": "customer_code", "value": code, "message": f"'{code}' is not a known customer code"}
    return (
        (upload_id, number, RowOutcome.REJECTED.value)
        + (None,) * 4
        + (reference,)
        + (None,) * 7
        + (json.dumps([problem]),)
    )


def _staged_rows(upload_id: int, rows, profile: MappingProfile, lookups: _Lookups) -> Iterator[tuple]:
    """One upload_rows tuple (STAGED_COLUMNS order) per source row, in file order.

    Rows of the common plain shape take RowNormalizer's fast path; every other row goes through
    normalize_row(), which gives the same values or all of the row's problems.
    """
    normalizer = RowNormalizer(profile)
    fast = normalizer.values
    customers = lookups.customers
    employees = lookups.employees
    accepted, quarantined = RowOutcome.ACCEPTED.value, RowOutcome.QUARANTINED.value
    for row in rows:
        number = row.number
        values = fast(row)
        if values is None:
            result = normalize_row(row, profile)
            if not isinstance(result, NormalizedRow):
                yield _rejected(upload_id, number, result)
                continue
            values = (
                result.employee_external_id,
                result.employee_name,
                result.customer_code,
                result.partner_reference,
                result.expense_type,
                result.amount_minor,
                result.currency,
                result.service_date,
                result.description,
                result.term,
            )
        external_id, name, code, reference, expense_type, amount, currency, date, description, term = values
        customer_id = customers.get(code) or customers.get(code.upper())
        if customer_id is None:
            yield _unknown_customer(upload_id, number, code, reference)
            continue
        known = employees.get(customer_id)
        if known is None:
            yield FLUSH  # the lookup below queries on the connection the bulk write is using
            known = lookups.employees_of(customer_id)
        employee_id = known.get(external_id)
        yield (
            upload_id,
            number,
            accepted if employee_id is not None else quarantined,
            customer_id,
            employee_id,
            external_id,
            name or None,
            reference,
            expense_type,
            amount,
            currency,
            date,
            description,
            term,
            fingerprint_values(code, external_id, expense_type, amount, currency, date, description, term),
            None,
        )


def _fail(upload: Upload, message: str) -> dict:
    db.session.rollback()
    upload = db.session.get(Upload, upload.id)
    db.session.execute(delete(UploadRow).where(UploadRow.upload_id == upload.id))
    upload.status = UploadStatus.FAILED
    upload.message = message
    upload.parsed_at = utcnow()
    audit.record("upload.failed", subject=upload, details={"message": message})
    db.session.commit()
    return {"upload_id": upload.id, "status": upload.status.value, "message": message}


def parse_upload(upload_id: int) -> dict:
    """The parse job: read the stored file, stage every row with its outcome, import a clean file.

    Idempotent: an upload already past parsing is left alone, and a re-run starts its staging over.
    """
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status not in (UploadStatus.RECEIVED, UploadStatus.PARSING):
        return {"upload_id": upload_id, "skipped": True}
    upload.status = UploadStatus.PARSING
    db.session.execute(delete(UploadRow).where(UploadRow.upload_id == upload.id))
    db.session.commit()

    storage_stream = get_storage().open(upload.storage_key)
    try:
        stream = ensure_seekable(storage_stream)
        try:
            read = _read_and_stage(upload, stream)
        except Exception as exc:
            # Whatever the file made a parser raise fails the upload now, for good: reading the same
            # bytes again would fail the same way. Only the database, Redis or storage failing is
            # raised on, for the job to retry.
            if is_infrastructure_error(exc):
                raise
            if not isinstance(exc, IngestError):
                log.warning("upload %s: unexpected error while reading the file", upload_id, exc_info=True)
            return _fail(upload, str(as_ingest_error(exc, None)))
    finally:
        storage_stream.close()
    if isinstance(read, dict):
        return read
    staged, version = read
    _classify(upload)
    _refresh_counts(upload)
    upload.parsed_at = utcnow()
    clean = upload.rejected == 0 and upload.conflicts == 0
    audit.record(
        "upload.parsed",
        subject=upload,
        details={"rows_read": staged, "mapping_version": version.version, **upload.counts()},
    )
    if clean:
        _import(upload, user=None)
    else:
        upload.status = UploadStatus.NEEDS_REVIEW
    db.session.commit()
    return {"upload_id": upload.id, "status": upload.status.value, **upload.counts()}


def _read_and_stage(upload: Upload, stream: BinaryIO) -> tuple[int, MappingProfileVersion] | dict:
    """Open the file, pick the profile and stage every row; the job's answer if it stops early.

    Every problem with the file's content is raised (IngestError, or what a parser raised).
    """
    parsed = open_source(stream)
    upload.file_format = parsed.format
    upload.headers = list(parsed.headers)
    version = choose_profile(upload.partner_id, parsed.headers)
    if version is None:
        parsed.close()
        upload.status = UploadStatus.NEEDS_MAPPING
        audit.record("upload.needs_mapping", subject=upload, details={"headers": upload.headers})
        db.session.commit()
        return {"upload_id": upload.id, "status": upload.status.value}
    profile = MappingProfile.from_json_dict(version.profile)
    if profile.sheet and parsed.sheet and profile.sheet != parsed.sheet:
        parsed.close()
        stream.seek(0)
        parsed = open_source(stream, sheet=profile.sheet)
    upload.mapping_profile_id = version.id
    upload.sheet = parsed.sheet
    with parsed:
        if not parsed.has_rows():
            raise IngestError("The file has a header row but no line items.")
        staged = _stage_all(upload, parsed, profile)
        upload.notes = list(parsed.notes) or None
    return staged, version


def _stage_all(upload: Upload, parsed, profile: MappingProfile) -> int:
    lookups = _Lookups.load()
    rows = _staged_rows(upload.id, parsed.rows, profile, lookups)
    total = insert_rows(UploadRow.__table__, STAGED_COLUMNS, _with_progress(rows, upload.job_id))
    upload.rows_read = total
    return total


def _with_progress(rows: Iterator[tuple], job_id: str | None) -> Iterator[tuple]:
    """Pass the rows through, reporting the count every CHUNK_ROWS rows.

    The rows are streamed into one bulk write (one COPY on PostgreSQL), so that parsing in Python
    and writing in the database overlap, and memory does not grow with the file.
    """
    count = 0
    for row in rows:
        yield row
        if row is not FLUSH:
            count += 1
            if job_id and not count % CHUNK_ROWS:
                jobs.set_progress(job_id, rows=count, phase="reading rows")
    if job_id:
        jobs.set_progress(job_id, rows=count, phase="reading rows")


_CLASSIFY_AGAINST_LINES = text(
    """
    UPDATE upload_rows SET
      existing_line_item_id = (
        SELECT li.id FROM line_items li
        WHERE li.partner_id = :partner_id AND li.partner_reference = upload_rows.partner_reference),
      outcome = CASE WHEN EXISTS (
          SELECT 1 FROM line_items li
          WHERE li.partner_id = :partner_id AND li.partner_reference = upload_rows.partner_reference
            AND li.fingerprint = upload_rows.fingerprint)
        THEN 'duplicate' ELSE 'conflict' END
    WHERE upload_id = :upload_id AND outcome IN ('accepted', 'quarantined')
      AND EXISTS (
        SELECT 1 FROM line_items li
        WHERE li.partner_id = :partner_id AND li.partner_reference = upload_rows.partner_reference
          AND NOT (li.upload_id = :upload_id AND li.source_row = upload_rows.row_number))
    """
)

# A reference repeated inside one file: the first occurrence stands; a later one with the same
# content is a duplicate, with other content a conflict. Set-based: one window pass over the
# upload's held rows, ordered by reference and row, then an update of the later occurrences only,
# joined by primary key (never the first, so this reads the same on PostgreSQL and SQLite).
# Correlated subqueries per row were quadratic on SQLite (its planner answered MIN(row_number)
# per reference by walking the outcome index).
_CLASSIFY_WITHIN_FILE = text(
    """
    WITH ranked AS (
      SELECT id, fingerprint,
        FIRST_VALUE(fingerprint) OVER w AS first_fingerprint,
        ROW_NUMBER() OVER w AS occurrence
      FROM upload_rows
      WHERE upload_id = :upload_id AND outcome IN ('accepted', 'quarantined')
        AND partner_reference IS NOT NULL
      WINDOW w AS (PARTITION BY partner_reference ORDER BY row_number)
    )
    UPDATE upload_rows SET
      outcome = CASE WHEN ranked.fingerprint = ranked.first_fingerprint
        THEN 'duplicate' ELSE 'conflict' END
    FROM ranked
    WHERE upload_rows.id = ranked.id AND ranked.occurrence > 1
    """
)


def _classify(upload: Upload) -> None:
    params = {"upload_id": upload.id, "partner_id": upload.partner_id}
    db.session.execute(_CLASSIFY_AGAINST_LINES, params)
    db.session.execute(_CLASSIFY_WITHIN_FILE, params)


def _refresh_counts(upload: Upload) -> None:
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


_IMPORT = text(
    """
    INSERT INTO line_items (partner_id, customer_id, employee_id, partner_reference, expense_type,
        amount_minor, currency, service_date, description, term, upload_id, source_row, fingerprint,
        created_at)
    SELECT :partner_id, customer_id, employee_id, partner_reference, expense_type, amount_minor,
        currency, service_date, COALESCE(description, ''), term, upload_id, row_number, fingerprint, :now
    FROM upload_rows
    WHERE upload_id = :upload_id AND outcome = :outcome AND employee_id IS NOT NULL
    ON CONFLICT (partner_id, partner_reference) DO NOTHING
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


def _insert_lines(upload: Upload, outcome: str) -> None:
    params = {"upload_id": upload.id, "partner_id": upload.partner_id, "outcome": outcome, "now": utcnow()}
    db.session.execute(_IMPORT, params)
    # A line another upload imported in the meantime made ours skip: say so instead of counting it.
    db.session.execute(_CLASSIFY_AGAINST_LINES, params)


def _import(upload: Upload, *, user: User | None) -> None:
    _insert_lines(upload, RowOutcome.ACCEPTED.value)
    _refresh_counts(upload)
    upload.status = UploadStatus.IMPORTED
    upload.decided_at = utcnow()
    audit.record("upload.imported", subject=upload, actor=user, details=upload.counts())
    supersede_earlier(upload, user=user)


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


def import_valid_rows(upload: Upload, *, user: User | None) -> None:
    """The partner's "import the N valid rows" on an upload that needs review (caller commits)."""
    if upload.status != UploadStatus.NEEDS_REVIEW:
        raise UploadStateError(not_allowed(upload, "imported"))
    _claim(upload, allowed=(UploadStatus.NEEDS_REVIEW,), new=UploadStatus.IMPORTED, action="imported")
    _import(upload, user=user)


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


# --- quarantine -----------------------------------------------------------------------------------


def quarantined_employees() -> list[dict]:
    """Unknown employees holding rows of imported uploads: one entry per (customer, external id)."""
    rows = db.session.execute(
        select(
            UploadRow.customer_id,
            UploadRow.employee_external_id,
            func.max(UploadRow.employee_name),
            func.count(),
            func.sum(UploadRow.amount_minor),
            func.min(UploadRow.currency),
        )
        .join(Upload, Upload.id == UploadRow.upload_id)
        .where(UploadRow.outcome == RowOutcome.QUARANTINED.value, Upload.status == UploadStatus.IMPORTED)
        .group_by(UploadRow.customer_id, UploadRow.employee_external_id)
        .order_by(UploadRow.customer_id, UploadRow.employee_external_id)
    ).all()
    return [
        {"customer_id": c, "external_id": e, "name": n, "rows": k, "amount_minor": a, "currency": cur}
        for c, e, n, k, a, cur in rows
    ]


def release_quarantine(customer: Customer, external_id: str, employee: Employee, *, user: User | None) -> int:
    """Attach the held rows of (customer, external id) to `employee` and import them; return how many.

    Only rows of imported uploads are released (a cancelled upload's rows never are). Each affected
    upload gets a `quarantine.released` event.
    """
    if employee.customer_id != customer.id:
        raise ValueError("the employee belongs to another customer")
    upload_ids = db.session.scalars(
        select(UploadRow.upload_id)
        .join(Upload, Upload.id == UploadRow.upload_id)
        .where(
            UploadRow.outcome == RowOutcome.QUARANTINED.value,
            UploadRow.customer_id == customer.id,
            UploadRow.employee_external_id == external_id,
            Upload.status == UploadStatus.IMPORTED,
        )
        .distinct()
    ).all()
    released = 0
    for upload in db.session.scalars(select(Upload).where(Upload.id.in_(upload_ids))):
        db.session.execute(
            text(
                "UPDATE upload_rows SET employee_id = :employee_id WHERE upload_id = :upload_id"
                " AND outcome = 'quarantined' AND customer_id = :customer_id"
                " AND employee_external_id = :external_id"
            ),
            {
                "employee_id": employee.id,
                "upload_id": upload.id,
                "customer_id": customer.id,
                "external_id": external_id,
            },
        )
        before = upload.imported
        _insert_lines(upload, RowOutcome.QUARANTINED.value)
        db.session.execute(
            text(
                "UPDATE upload_rows SET outcome = 'released' WHERE upload_id = :upload_id"
                " AND outcome = 'quarantined' AND employee_id = :employee_id AND EXISTS ("
                " SELECT 1 FROM line_items li WHERE li.upload_id = :upload_id"
                " AND li.source_row = upload_rows.row_number)"
            ),
            {"upload_id": upload.id, "employee_id": employee.id},
        )
        _refresh_counts(upload)
        count = upload.imported - before
        released += count
        audit.record(
            "quarantine.released",
            subject=upload,
            actor=user,
            customer_id=customer.id,
            details={"employee_external_id": external_id, "employee_id": employee.id, "rows_imported": count},
        )
    return released


# --- reporting ------------------------------------------------------------------------------------


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


__all__ = [
    "MappingError",
    "UploadRefused",
    "UploadStateError",
    "cancel_upload",
    "choose_profile",
    "error_file",
    "held_rows",
    "import_valid_rows",
    "latest_profiles",
    "not_allowed",
    "parse_upload",
    "problem_rows",
    "quarantined_employees",
    "receive_upload",
    "release_quarantine",
    "remap_upload",
    "row_messages",
    "save_mapping",
    "summary",
    "supersede_earlier",
]
