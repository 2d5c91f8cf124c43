"""Rows held because their employee is not on the customer's roster, and their release once the
employee exists: the held rows of imported uploads are attached and imported exactly once."""

from __future__ import annotations

from sqlalchemy import func, select, text, update

from portal.accounts.employees import update_employee
from portal.accounts.rules import ValidationError
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
    """Unknown employees holding rows of imported uploads: one entry per (customer, external id,
    email); rows from profiles that identify by email have no ID, rows keyed by ID often no email."""
    rows = db.session.execute(
        select(
            UploadRow.customer_id,
            UploadRow.employee_external_id,
            UploadRow.employee_email,
            func.max(UploadRow.employee_name),
            func.count(),
            func.sum(UploadRow.amount_minor),
            func.min(UploadRow.currency),
        )
        .join(Upload, Upload.id == UploadRow.upload_id)
        .where(UploadRow.outcome == RowOutcome.QUARANTINED.value, Upload.status == UploadStatus.IMPORTED)
        .group_by(UploadRow.customer_id, UploadRow.employee_external_id, UploadRow.employee_email)
        .order_by(UploadRow.customer_id, UploadRow.employee_external_id, UploadRow.employee_email)
    ).all()
    return [
        {
            "customer_id": c,
            "external_id": e,
            "email": m,
            "name": n,
            "rows": k,
            "amount_minor": a,
            "currency": cur,
        }
        for c, e, m, n, k, a, cur in rows
    ]


def release_quarantine(
    customer: Customer,
    external_id: str | None,
    employee: Employee,
    *,
    user: User | None,
    email: str | None = None,
    add_email: bool = False,
) -> int:
    """Attach the held rows of (customer, external id, email) to `employee` and import them; return
    how many. With `add_email`, the held email is also put on the employee's record (the roster then
    knows it for the next file); an employee with another email already keeps it (ValidationError).

    Only rows of imported uploads are released (a cancelled upload's rows never are). Each affected
    upload gets a `quarantine.released` event.
    """
    if employee.customer_id != customer.id:
        raise ValueError("the employee belongs to another customer")
    external_id, email = external_id or None, (email or "").strip().lower() or None
    if add_email and email and (employee.email or "").lower() != email:
        if employee.email:
            raise ValidationError(
                "email", f"{employee.name} already has the email {employee.email}; release without adding it"
            )
        update_employee(employee, external_id=employee.external_id, name=employee.name, email=email)
    same_key = (
        UploadRow.employee_external_id.is_(None)
        if external_id is None
        else UploadRow.employee_external_id == external_id,
        UploadRow.employee_email.is_(None) if email is None else UploadRow.employee_email == email,
    )
    upload_ids = db.session.scalars(
        select(UploadRow.upload_id)
        .join(Upload, Upload.id == UploadRow.upload_id)
        .where(
            UploadRow.outcome == RowOutcome.QUARANTINED.value,
            UploadRow.customer_id == customer.id,
            *same_key,
            Upload.status == UploadStatus.IMPORTED,
        )
        .distinct()
    ).all()
    released = 0
    for upload in db.session.scalars(select(Upload).where(Upload.id.in_(upload_ids))):
        db.session.execute(
            update(UploadRow)
            .where(
                UploadRow.upload_id == upload.id,
                UploadRow.outcome == RowOutcome.QUARANTINED.value,
                UploadRow.customer_id == customer.id,
                *same_key,
            )
            .values(employee_id=employee.id)
            .execution_options(synchronize_session=False)
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
            details={
                "employee_external_id": external_id,
                "employee_email": email,
                "employee_id": employee.id,
                "rows_imported": count,
                "email_added": bool(add_email and email),
            },
        )
    return released
