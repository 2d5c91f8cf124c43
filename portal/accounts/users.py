"""Login accounts: create, invite, change role, deactivate and reactivate, each checked and audited.

Every function here is the one place its rule lives; admin pages and CLI commands both call it and
commit. `acting_user` is who did it (None from the CLI: the event is then the system's).
"""

from __future__ import annotations

from sqlalchemy import func, select

from portal.accounts.rules import (
    MIN_PASSWORD,
    ValidationError,
    apply_changes,
    check_email,
    check_tenant,
    choice,
)
from portal.auth import sessions
from portal.auth.password_policy import password_problem
from portal.core import audit
from portal.extensions import db
from portal.models import Customer, Partner, Role, User
from portal.models.sessions import SessionEnd


def _check_new_email(email: str) -> str:
    email = check_email(email)
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise ValidationError("email", f"a user with email {email} already exists")
    return email


def create_user(
    *,
    email: str,
    password: str,
    role: str,
    name: str = "",
    partner_slug: str | None = None,
    customer_code: str | None = None,
) -> User:
    """Create a user with a password (the CLI's `create-user`) and audit `user.created`."""
    email = check_email(email)
    role_value = choice(Role, role, "role")
    if len(password) < MIN_PASSWORD:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD} characters")
    email = _check_new_email(email)
    partner_slug, customer_code = check_tenant(
        role_value,
        partner_slug,
        customer_code,
        partner_hint="--partner SLUG",
        customer_hint="--customer CODE",
    )
    partner = customer = None
    if partner_slug:
        partner = db.session.scalar(select(Partner).where(Partner.slug == partner_slug.strip().lower()))
        if partner is None:
            raise ValidationError("partner", f"no partner with slug {partner_slug!r}")
    if customer_code:
        customer = db.session.scalar(select(Customer).where(Customer.code == customer_code.strip().upper()))
        if customer is None:
            raise ValidationError("customer", f"no customer with code {customer_code!r}")
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


def invite_user(
    *,
    email: str,
    name: str,
    role: Role | str,
    partner_id: int | None,
    customer_id: int | None,
    acting_user: User | None = None,
) -> User:
    """Create a user with no password (they choose it from the invitation) and audit `user.invited`.

    The caller mails the invitation once the user is committed (`auth.password.send_password_mail`).
    """
    role = Role(role)
    partner_id, customer_id = check_tenant(role, partner_id or None, customer_id or None)
    email = _check_new_email(email)
    if partner_id is not None and db.session.get(Partner, partner_id) is None:
        raise ValidationError("partner", "choose an existing partner")
    if customer_id is not None and db.session.get(Customer, customer_id) is None:
        raise ValidationError("customer", "choose an existing customer")
    user = User(
        email=email,
        name=(name or "").strip(),
        role=role,
        partner_id=partner_id,
        customer_id=customer_id,
        password_hash=None,
        active=True,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.invited",
        subject=user,
        actor=acting_user,
        partner_id=partner_id,
        customer_id=customer_id,
        details={"email": email, "role": role.value},
    )
    return user


def reinvite_user(user: User, *, acting_user: User | None = None) -> None:
    """Audit a new invitation for a user who has not chosen a password yet (the caller mails it)."""
    if user.password_hash or not user.active:
        raise ValidationError("user", f"{user.email} has already set a password or is deactivated.")
    audit.record(
        "user.invited", subject=user, actor=acting_user, details={"email": user.email, "resent": True}
    )


def change_role(
    user: User,
    *,
    role: Role | str,
    partner_id: int | None,
    customer_id: int | None,
    acting_user: User | None = None,
) -> dict:
    """Give `user` another role (and tenant); audit `user.role_changed` with before/after.

    Their sessions end, so their next request sees the new role. No one changes their own role.
    Returns the change (empty "after" when nothing changed).
    """
    if acting_user is not None and user.id == acting_user.id:
        raise ValidationError("role", "you cannot change your own role")
    role = Role(role)
    partner_id, customer_id = check_tenant(role, partner_id or None, customer_id or None)
    change = apply_changes(user, {"role": role, "partner_id": partner_id, "customer_id": customer_id})
    if change["after"]:
        user.session_version += 1
        sessions.end_all(user, SessionEnd.ROLE_CHANGED)
        audit.record("user.role_changed", subject=user, actor=acting_user, details=change)
    return change


def deactivate_user(user: User, *, reason: str, acting_user: User | None = None) -> None:
    """Stop `user` logging in: their sessions and password links end at once; audit `user.deactivated`
    with the reason. No one deactivates themselves (another administrator must)."""
    if acting_user is not None and user.id == acting_user.id:
        raise ValidationError("user", "You cannot deactivate your own account; ask another administrator.")
    if not user.active:
        raise ValidationError("user", f"{user.email} is already deactivated.")
    user.active = False
    user.session_version += 1  # their password links name the old version: they stop working
    sessions.end_all(user, SessionEnd.DEACTIVATED)
    audit.record(
        "user.deactivated",
        subject=user,
        actor=acting_user,
        details={"reason": reason.strip(), "before": {"active": True}, "after": {"active": False}},
    )


def reactivate_user(user: User, *, acting_user: User | None = None) -> bool:
    """Let a deactivated user log in again (with their old password); audit `user.reactivated`.
    Returns False, and records nothing, if the user is already active."""
    if user.active:
        return False
    user.active = True
    audit.record(
        "user.reactivated",
        subject=user,
        actor=acting_user,
        details={"before": {"active": False}, "after": {"active": True}},
    )
    return True
