"""Creating and editing customers (the companies invoiced for their employees' tuition), audited."""

from __future__ import annotations

from sqlalchemy import select

from portal.accounts.rules import CODE_RE, ValidationError, apply_changes, check_name, check_timezone, choice
from portal.core import audit
from portal.extensions import db
from portal.models import Customer, CustomerKind


def create_customer(
    *, code: str, name: str, kind: str = "corporation", timezone: str = "UTC", invoice_day: int = 1
) -> Customer:
    """Add a customer and audit `customer.created`; raises ValidationError (code taken, bad zone...)."""
    code = code.strip().upper()
    if not CODE_RE.match(code):
        raise ValidationError("code", "use 1-32 letters, digits and dashes (e.g. ACME)")
    if not name.strip():
        raise ValidationError("name", "a name is required")
    if not 1 <= int(invoice_day) <= 28:
        raise ValidationError("invoice_day", "must be a day from 1 to 28, so that every month has it")
    if db.session.scalar(select(Customer.id).where(Customer.code == code)):
        raise ValidationError("code", f"a customer with code {code!r} already exists")
    customer = Customer(
        code=code,
        name=name.strip(),
        kind=choice(CustomerKind, kind, "kind"),
        timezone=check_timezone(timezone),
        invoice_day=int(invoice_day),
    )
    db.session.add(customer)
    db.session.flush()
    audit.record(
        "customer.created",
        subject=customer,
        customer_id=customer.id,
        details={
            "code": code,
            "name": customer.name,
            "timezone": timezone,
            "invoice_day": customer.invoice_day,
        },
    )
    return customer


def update_customer(
    customer: Customer, *, name: str, kind: str, timezone: str, invoice_day: int, invoicing_enabled: bool
) -> dict:
    """Change a customer's name, kind, time zone, invoice day and invoicing; audit `customer.updated`
    with the changed fields only. Returns the change (empty "after" when nothing changed)."""
    values = {
        "name": check_name(name),
        "kind": CustomerKind(kind),
        "timezone": check_timezone(timezone.strip()),
        "invoice_day": invoice_day,
        "invoicing_enabled": bool(invoicing_enabled),
    }
    change = apply_changes(customer, values)
    if change["after"]:
        audit.record("customer.updated", subject=customer, details=change, customer_id=customer.id)
    return change
