"""Partners, customers, users and employees: every change to them, checked and audited, in one place.

Shared by the CLI and the admin pages; each function raises `ValidationError` with a message a person
can act on and leaves the commit to its caller. One module per aggregate; the names callers use are
re-exported here (`accounts.create_user(...)`).
"""

from portal.accounts.customers import create_customer, update_customer
from portal.accounts.employees import create_employee, update_employee
from portal.accounts.partners import create_partner, update_partner
from portal.accounts.rules import (
    CODE_RE,
    MIN_PASSWORD,
    SLUG_RE,
    ValidationError,
    apply_changes,
    check_currency,
    check_email,
    check_timezone,
)
from portal.accounts.users import (
    change_role,
    create_user,
    deactivate_user,
    invite_user,
    reactivate_user,
    reinvite_user,
)

__all__ = [
    "CODE_RE",
    "MIN_PASSWORD",
    "SLUG_RE",
    "ValidationError",
    "apply_changes",
    "change_role",
    "check_currency",
    "check_email",
    "check_timezone",
    "create_customer",
    "create_employee",
    "create_partner",
    "create_user",
    "deactivate_user",
    "invite_user",
    "reactivate_user",
    "reinvite_user",
    "update_customer",
    "update_employee",
    "update_partner",
]
