"""Importing a customer's employee roster (external id, name, email) from a CSV file.

Re-importing updates existing employees by external id and never duplicates them; a bad row is
reported with its row number and field and does not stop the good rows from being imported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import BinaryIO

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from portal.core import audit
from portal.extensions import db
from portal.models import Customer, Employee

HEADER_ALIASES = {
    "external_id": {"external_id", "external id", "employee_id", "employee id", "employee #", "id"},
    "name": {"name", "employee name", "full name"},
    "email": {"email", "e-mail", "email address"},
}


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}"


@dataclass
class RosterResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.errors),
            "errors": [str(e) for e in self.errors],
        }


class RosterFileError(ValueError):
    """The file as a whole cannot be read (encoding, missing columns)."""


def _header_map(headers: list[str]) -> dict[str, str]:
    found = {}
    for header in headers:
        key = (header or "").strip().lower()
        for canonical, aliases in HEADER_ALIASES.items():
            if key in aliases and canonical not in found:
                found[canonical] = header
    missing = [c for c in ("external_id", "name") if c not in found]
    if missing:
        raise RosterFileError(
            f"the roster needs columns {', '.join(missing)} (found: {', '.join(h for h in headers if h)})"
        )
    return found


def import_roster(customer: Customer, stream: BinaryIO, *, source: str = "") -> RosterResult:
    """Create or update `customer`'s employees from a CSV roster; return counts and row errors."""
    try:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        columns = _header_map(reader.fieldnames or [])
        rows = list(reader)
    except UnicodeDecodeError as exc:
        raise RosterFileError("the roster is not UTF-8 text; save it as CSV UTF-8") from exc
    existing = {
        e.external_id: e
        for e in db.session.scalars(select(Employee).where(Employee.customer_id == customer.id))
    }
    result = RosterResult()
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        external_id = (row.get(columns["external_id"]) or "").strip()
        name = (row.get(columns["name"]) or "").strip()
        email_raw = (row.get(columns["email"]) or "").strip() if "email" in columns else ""
        errors = []
        if not external_id:
            errors.append(RowError(number, "external_id", "is required"))
        elif len(external_id) > 64:
            errors.append(RowError(number, "external_id", "is longer than 64 characters"))
        elif external_id in seen:
            errors.append(
                RowError(number, "external_id", f"{external_id!r} already appears on row {seen[external_id]}")
            )
        if not name:
            errors.append(RowError(number, "name", "is required"))
        email = None
        if email_raw:
            try:
                email = validate_email(email_raw, check_deliverability=False).normalized
            except EmailNotValidError as exc:
                errors.append(RowError(number, "email", f"{email_raw!r} is not a valid address ({exc})"))
        if errors:
            result.errors.extend(errors)
            continue
        seen[external_id] = number
        employee = existing.get(external_id)
        if employee is None:
            employee = Employee(customer_id=customer.id, external_id=external_id, name=name, email=email)
            db.session.add(employee)
            existing[external_id] = employee
            result.created += 1
        elif (employee.name, employee.email) != (name, email):
            employee.name, employee.email = name, email
            result.updated += 1
        else:
            result.unchanged += 1
    audit.record(
        "employees.imported",
        subject=customer,
        subject_type="Customer",
        customer_id=customer.id,
        details={"source": source, **result.as_dict()},
    )
    return result
