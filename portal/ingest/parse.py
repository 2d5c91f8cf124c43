"""The parse job: read a stored upload, stage every row in bulk with its outcome, classify duplicates
and conflicts with set-based SQL, and import a clean file at once (else it waits for review)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import delete, select, text

from portal import jobs
from portal.core import audit
from portal.core.bulk import FLUSH, insert_rows
from portal.core.storage import get_storage
from portal.extensions import db
from portal.ingest.formats.base import IngestError
from portal.ingest.formats.detect import (
    as_ingest_error,
    ensure_seekable,
    is_infrastructure_error,
    open_source,
)
from portal.ingest.importing import CLASSIFY_AGAINST_LINES, import_upload, refresh_counts
from portal.ingest.mapping import MappingProfile, row_key_columns
from portal.ingest.normalize import NormalizedRow, RowNormalizer, fingerprint_values, normalize_row
from portal.ingest.profiles import choose_profile
from portal.models import (
    Customer,
    Employee,
    MappingProfileVersion,
    RowOutcome,
    Upload,
    UploadRow,
    UploadStatus,
)
from portal.models.base import utcnow

log = logging.getLogger(__name__)


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
    refresh_counts(upload)
    upload.parsed_at = utcnow()
    clean = upload.rejected == 0 and upload.conflicts == 0
    audit.record(
        "upload.parsed",
        subject=upload,
        details={"rows_read": staged, "mapping_version": version.version, **upload.counts()},
    )
    if clean:
        import_upload(upload, user=None)
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
        parsed.skip_trailing_rows(row_key_columns(profile))
        if not parsed.has_rows():
            if parsed.skipped:
                listed = ", ".join(f"row {s['row']} ({s['reason']})" for s in parsed.skipped[:5])
                raise IngestError(f"The file has no line items, only rows that are not: {listed}.")
            raise IngestError("The file has a header row but no line items.")
        staged = _stage_all(upload, parsed, profile)
        # Rows after the data that are not line items (totals, signatures): listed, not staged.
        upload.notes = list(parsed.skipped) or None
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
    db.session.execute(CLASSIFY_AGAINST_LINES, params)
    db.session.execute(_CLASSIFY_WITHIN_FILE, params)
