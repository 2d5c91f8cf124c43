"""Creating and editing customers (the companies invoiced for their employees' tuition), audited."""

from __future__ import annotations

from sqlalchemy import select

from portal.accounts.rules import (
    CODE_RE,
    ValidationError,
    apply_changes,
    check_address,
    check_invoice_day,
    check_locale,
    check_name,
    check_payment_terms,
    check_timezone,
    choice,
)
from portal.core import audit
from portal.extensions import db
from portal.models import Customer, CustomerKind


def create_customer(
    *,
    code: str,
    name: str,
    kind: str = "corporation",
    timezone: str = "UTC",
    invoice_day: int = 1,
    billing_address: str = "",
    payment_terms_days: int = 30,
    locale: str = "en_US",
) -> Customer:
    """Add a customer and audit `customer.created`; raises ValidationError (code taken, bad zone...)."""
    code = code.strip().upper()
    if not CODE_RE.match(code):
        raise ValidationError("code", "use 1-32 letters, digits and dashes (e.g. ACME)")
    if not name.strip():
        raise ValidationError("name", "a name is required")
    check_invoice_day(invoice_day)
    if db.session.scalar(select(Customer.id).where(Customer.code == code)):
        raise ValidationError("code", f"a customer with code {code!r} already exists")
    customer = Customer(
        code=code,
        name=name.strip(),
        kind=choice(CustomerKind, kind, "kind"),
        timezone=check_timezone(timezone),
        invoice_day=int(invoice_day),
        billing_address=check_address(billing_address),
        payment_terms_days=check_payment_terms(payment_terms_days),
        locale=check_locale(locale),
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
            "billing_address": customer.billing_address,
            "payment_terms_days": customer.payment_terms_days,
            "locale": customer.locale,
        },
    )
    return customer


def update_customer(
    customer: Customer,
    *,
    name: str,
    kind: str,
    timezone: str,
    invoice_day: int,
    invoicing_enabled: bool,
    billing_address: str | None = None,
    payment_terms_days: int | None = None,
    locale: str | None = None,
) -> dict:
    """Change a customer's name, kind, time zone, invoice day, invoicing and billing details (None:
    unchanged); audit `customer.updated` with the changed fields only. Returns the change (empty
    "after" when nothing changed)."""
    values = {
        "name": check_name(name),
        "kind": CustomerKind(kind),
        "timezone": check_timezone(timezone.strip()),
        "invoice_day": check_invoice_day(invoice_day),
        "invoicing_enabled": bool(invoicing_enabled),
    }
    if billing_address is not None:
        values["billing_address"] = check_address(billing_address)
    if payment_terms_days is not None:
        values["payment_terms_days"] = check_payment_terms(payment_terms_days)
    if locale is not None:
        values["locale"] = check_locale(locale)
    change = apply_changes(customer, values)
    if change["after"]:
        audit.record("customer.updated", subject=customer, details=change, customer_id=customer.id)
    return change
