"""The checks every account operation shares: input formats, tenant rules, and before/after changes.

Each check raises `ValidationError` with a message a person can act on.
"""

from __future__ import annotations

import enum
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email

from portal.auth.password_policy import MIN_LENGTH
from portal.core.catalog import CURRENCY_EXPONENTS
from portal.core.formatting import LOCALES
from portal.models import Role

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
    if code not in CURRENCY_EXPONENTS:
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


def check_address(text: str | None) -> str | None:
    """A postal address as typed, one line per line; blank lines dropped; None when empty."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(lines) > 8 or any(len(line) > 120 for line in lines):
        raise ValidationError("billing_address", "use at most 8 lines of at most 120 characters")
    return "\n".join(lines) or None


def check_invoice_day(day) -> int:
    """The day of the month a customer's invoice is made: 1-28, so that every month has it."""
    if day is None or isinstance(day, bool) or not 1 <= int(day) <= 28:
        raise ValidationError("invoice_day", "must be a day from 1 to 28, so that every month has it")
    return int(day)


def check_payment_terms(days) -> int:
    try:
        value = int(days)
    except (TypeError, ValueError) as exc:
        raise ValidationError("payment_terms_days", "must be a whole number of days") from exc
    if not 0 <= value <= 180:
        raise ValidationError("payment_terms_days", "must be from 0 (due on receipt) to 180 days")
    return value


def check_locale(name: str) -> str:
    """A locale the portal formats money and dates for (portal.core.formatting.LOCALES)."""
    name = (name or "").strip().replace("-", "_")
    if name not in LOCALES:
        raise ValidationError("locale", f"{name!r} is not offered; choose one of {', '.join(LOCALES)}")
    return name


def check_email(address: str) -> str:
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError("email", str(exc)) from exc


def check_name(name: str) -> str:
    if not (name or "").strip():
        raise ValidationError("name", "a name is required")
    return name.strip()


def choice(enum_cls, value: str, field: str):
    try:
        return enum_cls(value.strip().lower())
    except ValueError as exc:
        allowed = ", ".join(m.value for m in enum_cls)
        raise ValidationError(field, f"{value!r} is not one of: {allowed}") from exc


def check_tenant(role: Role, partner, customer, *, partner_hint="a partner", customer_hint="a customer"):
    """The one tenant rule: a partner user has a partner, a customer contact a customer, an admin neither.

    `partner` and `customer` are whatever identifies them to the caller (an id, a slug, a code); the one
    the role does not use is dropped. Returns (partner, customer).
    """
    if role == Role.PARTNER:
        if not partner:
            raise ValidationError("partner", f"a partner user needs {partner_hint}")
        return partner, None
    if role == Role.CUSTOMER:
        if not customer:
            raise ValidationError("customer", f"a customer contact needs {customer_hint}")
        return None, customer
    if partner or customer:
        raise ValidationError("role", "an admin belongs to no partner or customer")
    return None, None


def _plain(value):
    return value.value if isinstance(value, enum.Enum) else value


def apply_changes(obj, values: dict) -> dict:
    """Set `values` on `obj`; return {"before": ..., "after": ...} of the fields that changed."""
    before, after = {}, {}
    for key, value in values.items():
        old = getattr(obj, key)
        if old != value:
            before[key], after[key] = _plain(old), _plain(value)
            setattr(obj, key, value)
    return {"before": before, "after": after}
