"""Adding and editing a customer's employees one at a time, audited (a whole roster: `roster.py`).

Admin pages and the quarantine release both create employees here, so each gets the same checks and
the same `employee.created` event.
"""

from __future__ import annotations

from sqlalchemy import select

from portal.accounts.rules import ValidationError, apply_changes
from portal.core import audit
from portal.extensions import db
from portal.models import Customer, Employee


def _values(customer: Customer, external_id: str, name: str, email: str | None, exclude_id=None) -> dict:
    values = {
        "external_id": (external_id or "").strip(),
        "name": (name or "").strip(),
        "email": (email or "").strip().lower() or None,
    }
    if not values["name"]:
        raise ValidationError("name", "a name is needed to create the employee")
    stmt = select(Employee.id).where(
        Employee.customer_id == customer.id, Employee.external_id == values["external_id"]
    )
    if exclude_id is not None:
        stmt = stmt.where(Employee.id != exclude_id)
    if db.session.scalar(stmt) is not None:
        raise ValidationError(
            "external_id", f"{customer.code} already has an employee {values['external_id']!r}."
        )
    return values


def create_employee(
    customer: Customer, *, external_id: str, name: str, email: str | None = None, reason: str | None = None
) -> Employee:
    """Add an employee to `customer` and audit `employee.created` (with `reason` when one is given);
    raises ValidationError if the name is empty or the customer already has that employee id."""
    values = _values(customer, external_id, name, email)
    employee = Employee(customer_id=customer.id, **values)
    db.session.add(employee)
    db.session.flush()
    details = {"before": {}, "after": values}
    if reason:
        details["reason"] = reason
    audit.record("employee.created", subject=employee, details=details)
    return employee


def update_employee(employee: Employee, *, external_id: str, name: str, email: str | None) -> dict:
    """Change an employee's id, name and email; audit `employee.updated` with the changed fields only.
    Returns the change (empty "after" when nothing changed)."""
    customer = db.session.get(Customer, employee.customer_id)
    values = _values(customer, external_id, name, email, exclude_id=employee.id)
    change = apply_changes(employee, values)
    if change["after"]:
        audit.record("employee.updated", subject=employee, details=change)
    return change
