"""Rows held because their employee is not on the customer's roster, and their release once the
employee exists: the held rows of imported uploads are attached and imported exactly once."""

from __future__ import annotations

from sqlalchemy import func, select, text

from portal.core import audit
from portal.extensions import db
from portal.ingest.importing import insert_lines, refresh_counts
from portal.models import (
    Customer,
    Employee,
    RowOutcome,
    Upload,
    UploadRow,
    UploadStatus,
    User,
)


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
        insert_lines(upload, RowOutcome.QUARANTINED.value)
        db.session.execute(
            text(
                "UPDATE upload_rows SET outcome = 'released' WHERE upload_id = :upload_id"
                " AND outcome = 'quarantined' AND employee_id = :employee_id AND EXISTS ("
                " SELECT 1 FROM line_items li WHERE li.upload_id = :upload_id"
                " AND li.source_row = upload_rows.row_number)"
            ),
            {"upload_id": upload.id, "employee_id": employee.id},
        )
        refresh_counts(upload)
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
