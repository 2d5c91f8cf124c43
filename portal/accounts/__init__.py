"""Creating partners, customers and users, with validation and an audit event for each.

Shared by the CLI and the admin pages; raises `ValidationError` with a message a person can act on.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.numbers import list_currencies
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from portal.auth.password_policy import MIN_LENGTH, password_problem
from portal.core import audit
from portal.extensions import db
from portal.models import Customer, CustomerKind, Partner, PartnerKind, Role, User

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
CODE_RE = re.compile(r"^[A-Z0-9](?:[A-Z0-9-]{0,30}[A-Z0-9])?$")
MIN_PASSWORD = MIN_LENGTH


class ValidationError(ValueError):
    """Bad input for an account operation; `field` names the offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_currency(code: str) -> str:
    code = (code or "").strip().upper()
    if code not in list_currencies():
        raise ValidationError("currency", f"{code!r} is not an ISO 4217 currency code")
    return code


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            "timezone", f"{name!r} is not a known time zone (e.g. America/New_York)"
        ) from exc
    if name not in available_timezones() and name != "UTC":
        raise ValidationError("timezone", f"{name!r} is not a known time zone (e.g. America/New_York)")
    return name


def check_email(address: str) -> str:
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError("email", str(exc)) from exc


def _choice(enum_cls, value: str, field: str):
    try:
        return enum_cls(value.strip().lower())
    except ValueError as exc:
        allowed = ", ".join(m.value for m in enum_cls)
        raise ValidationError(field, f"{value!r} is not one of: {allowed}") from exc


def create_partner(*, slug: str, name: str, kind: str = "university", currency: str = "USD") -> Partner:
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise ValidationError("slug", "use 1-64 lowercase letters, digits and dashes (e.g. state-university)")
    if not name.strip():
        raise ValidationError("name", "a name is required")
    if db.session.scalar(select(Partner.id).where(Partner.slug == slug)):
        raise ValidationError("slug", f"a partner with slug {slug!r} already exists")
    partner = Partner(
        slug=slug,
        name=name.strip(),
        kind=_choice(PartnerKind, kind, "kind"),
        default_currency=check_currency(currency),
    )
    db.session.add(partner)
    db.session.flush()
    audit.record(
        "partner.created",
        subject=partner,
        partner_id=partner.id,
        details={"slug": slug, "name": partner.name, "kind": partner.kind.value},
    )
    return partner


def create_customer(
    *, code: str, name: str, kind: str = "corporation", timezone: str = "UTC", invoice_day: int = 1
) -> Customer:
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
        kind=_choice(CustomerKind, kind, "kind"),
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


def create_user(
    *,
    email: str,
    password: str,
    role: str,
    name: str = "",
    partner_slug: str | None = None,
    customer_code: str | None = None,
) -> User:
    email = check_email(email)
    role_value = _choice(Role, role, "role")
    if len(password) < MIN_PASSWORD:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD} characters")
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise ValidationError("email", f"a user with email {email} already exists")
    partner = customer = None
    if role_value == Role.PARTNER:
        if not partner_slug:
            raise ValidationError("partner", "a partner user needs --partner SLUG")
        partner = db.session.scalar(select(Partner).where(Partner.slug == partner_slug.strip().lower()))
        if partner is None:
            raise ValidationError("partner", f"no partner with slug {partner_slug!r}")
    elif role_value == Role.CUSTOMER:
        if not customer_code:
            raise ValidationError("customer", "a customer contact needs --customer CODE")
        customer = db.session.scalar(select(Customer).where(Customer.code == customer_code.strip().upper()))
        if customer is None:
            raise ValidationError("customer", f"no customer with code {customer_code!r}")
    elif partner_slug or customer_code:
        raise ValidationError("role", "an admin belongs to no partner or customer")
    if problem := password_problem(password, email=email):
        raise ValidationError("password", problem)
    user = User(email=email, name=name.strip(), role=role_value, partner=partner, customer=customer)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.created",
        subject=user,
        partner_id=user.partner_id,
        customer_id=user.customer_id,
        details={"email": email, "role": role_value.value},
    )
    return user
