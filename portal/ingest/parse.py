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
from portal.ingest import early_lines
from portal.ingest.customers import CustomerMatcher
from portal.ingest.formats.base import IngestError
from portal.ingest.formats.detect import (
    as_ingest_error,
    ensure_seekable,
    is_infrastructure_error,
    open_source,
)
from portal.ingest.importing import (
    CLASSIFY_AGAINST_LINES,
    CLASSIFY_IGNORING_OWN_LINES,
    import_upload,
    refresh_counts,
)
from portal.ingest.mapping import MappingProfile, row_key_columns
from portal.ingest.normalize import Fingerprints, NormalizedRow, RowNormalizer, normalize_row
from portal.ingest.profiles import choose_profile
from portal.models import (
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
    "employee_email",
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
    """Customers (by code, name and this partner's aliases) and each customer's employees by
    external id and by email, loaded once per customer."""

    customers: CustomerMatcher
    employees: dict[int, tuple[dict[str, int], dict[str, int]]]

    @classmethod
    def load(cls, partner_id: int | None = None) -> _Lookups:
        return cls(CustomerMatcher.load(partner_id), {})

    def employees_of(self, customer_id: int) -> tuple[dict[str, int], dict[str, int]]:
        known = self.employees.get(customer_id)
        if known is None:
            by_id, by_email = {}, {}
            for employee_id, external_id, email in db.session.execute(
                select(Employee.id, Employee.external_id, Employee.email).where(
                    Employee.customer_id == customer_id
                )
            ):
                by_id[external_id] = employee_id
                if email:
                    by_email.setdefault(email.strip().lower(), employee_id)
            known = self.employees[customer_id] = (by_id, by_email)
        return known


def _problems_json(problems) -> str:
    return json.dumps([{"field": p.field, "value": p.value, "message": p.message} for p in problems])


def _rejected(upload_id: int, number: int, problems) -> tuple:
    return (upload_id, number, RowOutcome.REJECTED.value) + (None,) * 13 + (_problems_json(problems),)


def _rejected_for(upload_id: int, number: int, reference: str, field: str, value: str, message: str) -> tuple:
    """A row whose values are fine but whose customer or employee cannot be settled."""
    problem = {"field": field, "value": value, "message": message}
    return (
        (upload_id, number, RowOutcome.REJECTED.value)
        + (None,) * 5
        + (reference,)
        + (None,) * 7
        + (json.dumps([problem]),)
    )


def _employee(by_id: dict, by_email: dict, external_id: str, email: str | None, key: str):
    """(employee id or None, None) or (None, (field, value, message)) when ID and email disagree.

    external_id: the ID alone; email: the email alone; either: the ID first, then the email, and a
    row whose ID and email name two different employees is refused with both values.
    """
    if key == "external_id":
        return by_id.get(external_id), None
    if key == "email":
        return (by_email.get(email) if email else None), None
    by_external = by_id.get(external_id) if external_id else None
    by_mail = by_email.get(email) if email else None
    if by_external is not None and by_mail is not None and by_external != by_mail:
        return None, (
            "employee_email",
            email,
            f"employee ID '{external_id}' and email '{email}' are two different employees",
        )
    return (by_external if by_external is not None else by_mail), None


def describe_matches(rows: list[NormalizedRow], profile: MappingProfile, partner_id: int) -> list[dict]:
    """For the mapping preview: which customer and employee each normalized row would go to.

    Each item: {"customer": code or None, "customer_problem": reason or None,
    "employee": "Name (ID)" or None, "employee_problem": why the row would wait or be refused}.
    """
    lookups = _Lookups.load(partner_id)
    found, matched = [], {}  # item index -> employee id, named in one query below
    for row in rows:
        customer_id, reason = lookups.customers.match(row.customer_code, by=profile.customer_match)
        item = {"customer": None, "customer_problem": reason, "employee": None, "employee_problem": None}
        if customer_id is not None:
            item["customer"] = lookups.customers.codes[customer_id]
            by_id, by_email = lookups.employees_of(customer_id)
            employee_id, clash = _employee(
                by_id, by_email, row.employee_external_id, row.employee_email, profile.employee_key
            )
            if clash is not None:
                item["employee_problem"] = clash[2]
            elif employee_id is None:
                item["employee_problem"] = "not on the roster: the row waits in quarantine"
            else:
                matched[len(found)] = employee_id
        found.append(item)
    names = dict(
        db.session.execute(
            select(Employee.id, Employee.name + " (" + Employee.external_id + ")").where(
                Employee.id.in_(set(matched.values()))
            )
        ).all()
    )
    for index, employee_id in matched.items():
        found[index]["employee"] = names[employee_id]
    return found


def _staged_rows(
    upload_id: int, rows, profile: MappingProfile, lookups: _Lookups, job_id: str | None = None
) -> Iterator[tuple]:
    """One upload_rows tuple (STAGED_COLUMNS order) per source row, in file order.

    Rows of the common plain shape take RowNormalizer's fast path; every other row goes through
    normalize_row(), which gives the same values or all of the row's problems. With a `job_id`,
    the job's progress says how many rows were read, every CHUNK_ROWS rows and at the end.
    """
    normalizer = RowNormalizer(profile)
    fast = normalizer.values
    fingerprint = Fingerprints()
    customers = lookups.customers
    employees = lookups.employees
    match_by, key = profile.customer_match, profile.employee_key
    by_code, by_our_code, by_id_only = customers.by_code, match_by == "code", key == "external_id"
    accepted, quarantined = RowOutcome.ACCEPTED.value, RowOutcome.QUARANTINED.value
    count = 0
    for count, row in enumerate(rows, 1):
        if job_id and not count % CHUNK_ROWS:
            jobs.set_progress(job_id, rows=count, phase="reading rows")
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
                result.employee_email,
            )
        (external_id, name, code, reference, expense_type, amount, currency, date, description, term,
         email) = values  # fmt: skip
        # Our own code, as written, is the common case: one dict look-up, no call.
        customer_id = by_code.get(code) if by_our_code else None
        if customer_id is None:
            customer_id, reason = customers.match(code, by=match_by)
            if customer_id is None:
                yield _rejected_for(upload_id, number, reference, "customer_code", code, reason)
                continue
            if match_by == "name" or (code not in by_code and code.upper() not in by_code):
                code = customers.codes[customer_id]  # a name or an alias: the fingerprint uses our code
        known = employees.get(customer_id)
        if known is None:
            yield FLUSH  # the lookup below queries on the connection the bulk write is using
            known = lookups.employees_of(customer_id)
        if by_id_only:
            employee_id = known[0].get(external_id)
        else:
            employee_id, clash = _employee(known[0], known[1], external_id, email, key)
            if clash is not None:
                yield _rejected_for(upload_id, number, reference, *clash)
                continue
        yield (
            upload_id,
            number,
            accepted if employee_id is not None else quarantined,
            customer_id,
            employee_id,
            external_id or None,
            email,
            name or None,
            reference,
            expense_type,
            amount,
            currency,
            date,
            description,
            term,
            fingerprint(
                code,
                external_id or (f"email:{email}" if email else ""),  # employee_key_value()
                expense_type,
                amount,
                currency,
                date,
                description,
                term,
            ),
            None,
        )
    if job_id:
        jobs.set_progress(job_id, rows=count, phase="reading rows")


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
        return read_upload(upload, storage_stream)
    finally:
        storage_stream.close()


def read_upload(
    upload: Upload, source: BinaryIO, *, profile: MappingProfile | None = None, skip_trailing: bool = True
) -> dict:
    """Read an upload's file from `source`, stage every row with its outcome, import a clean file.

    The parse job reads the stored original with the partner's newest profile that covers the
    headers; a line-items batch sent as data (portal.ingest.batch) is read here too, with its fixed
    `profile` and every item kept a row (`skip_trailing=False`), so both go through the same rules.
    Commits; a problem with the file's content fails the upload with its message.
    """
    try:
        stream = ensure_seekable(source)
        read = _read_and_stage(upload, stream, profile=profile, skip_trailing=skip_trailing)
    except Exception as exc:
        # Whatever the file made a parser raise fails the upload now, for good: reading the same
        # bytes again would fail the same way. Only the database, Redis or storage failing is
        # raised on, for the job to retry.
        if is_infrastructure_error(exc):
            raise
        if not isinstance(exc, IngestError):
            log.warning("upload %s: unexpected error while reading the file", upload.id, exc_info=True)
        return _fail(upload, str(as_ingest_error(exc, None)))
    if isinstance(read, dict):
        return read
    staged, version, early = read
    _classify(upload, ignoring_own_lines=early is not None)
    refresh_counts(upload)
    upload.parsed_at = utcnow()
    clean = upload.rejected == 0 and upload.conflicts == 0
    kept = False
    if early is not None:
        kept = early_lines.settle(upload, early, clean=clean, accepted=upload.accepted)
        upload.imported = 0  # the upload had no lines before; the early ones count once imported
    audit.record(
        "upload.parsed",
        subject=upload,
        details={
            "rows_read": staged,
            "mapping_version": version.version if version is not None else None,
            **upload.counts(),
        },
    )
    if clean:
        import_upload(upload, user=None, lines_inserted=kept)
    else:
        upload.status = UploadStatus.NEEDS_REVIEW
    db.session.commit()
    return {"upload_id": upload.id, "status": upload.status.value, **upload.counts()}


def _read_and_stage(
    upload: Upload, stream: BinaryIO, *, profile: MappingProfile | None = None, skip_trailing: bool = True
) -> tuple[int, MappingProfileVersion | None, early_lines.EarlyLines | None] | dict:
    """Open the file, pick the profile (unless given) and stage every row; the job's answer if it
    stops early. Returns the rows staged, the profile version and the early lines (or None).

    Every problem with the file's content is raised (IngestError, or what a parser raised).
    """
    parsed = open_source(stream)
    upload.file_format = parsed.format
    upload.headers = list(parsed.headers)
    version = None
    if profile is None:
        version = choose_profile(upload.partner_id, parsed.headers)
        if version is None:
            parsed.close()
            upload.status = UploadStatus.NEEDS_MAPPING
            audit.record("upload.needs_mapping", subject=upload, details={"headers": upload.headers})
            db.session.commit()
            return {"upload_id": upload.id, "status": upload.status.value}
        profile = MappingProfile.from_json_dict(version.profile)
        upload.mapping_profile_id = version.id
    if profile.sheet and parsed.sheet and profile.sheet != parsed.sheet:
        parsed.close()
        stream.seek(0)
        parsed = open_source(stream, sheet=profile.sheet)
    upload.sheet = parsed.sheet
    with parsed:
        if skip_trailing:
            parsed.skip_trailing_rows(row_key_columns(profile))
        if not parsed.has_rows():
            if parsed.skipped:
                listed = ", ".join(f"row {s['row']} ({s['reason']})" for s in parsed.skipped[:5])
                raise IngestError(f"The file has no line items, only rows that are not: {listed}.")
            raise IngestError("The file has a header row but no line items.")
        staged, early = _stage_all(upload, parsed, profile)
        # Rows after the data that are not line items (totals, signatures): listed, not staged.
        upload.notes = list(parsed.skipped) or None
    return staged, version, early


def _stage_all(upload: Upload, parsed, profile: MappingProfile) -> tuple[int, early_lines.EarlyLines | None]:
    """Stage every row; on PostgreSQL with the line items inserted as it goes (early_lines)."""
    lookups = _Lookups.load(upload.partner_id)
    rows = _staged_rows(upload.id, parsed.rows, profile, lookups, upload.job_id)
    early = None
    if early_lines.usable(upload):
        total, early = early_lines.stage(upload, rows, STAGED_COLUMNS)
    else:
        # Streamed into one bulk write, so that parsing in Python and writing in the database
        # overlap, and memory does not grow with the file.
        total = insert_rows(UploadRow.__table__, STAGED_COLUMNS, rows)
    upload.rows_read = total
    return total, early


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


def _classify(upload: Upload, *, ignoring_own_lines: bool = False) -> None:
    params = {"upload_id": upload.id, "partner_id": upload.partner_id}
    db.session.execute(CLASSIFY_IGNORING_OWN_LINES if ignoring_own_lines else CLASSIFY_AGAINST_LINES, params)
    db.session.execute(_CLASSIFY_WITHIN_FILE, params)
