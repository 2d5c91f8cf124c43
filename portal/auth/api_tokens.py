"""Personal access tokens for the REST API: create (the secret is returned once), look up, revoke.

Only the SHA-256 of a token is stored. A token acts as its user with that user's role and tenant; it
stops working when it expires, is revoked, its user is deactivated, or its user's role or tenant changes.
Nothing here reads the request: callers pass the user and the clock.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from portal.core import audit
from portal.extensions import db
from portal.models.api import ApiToken
from portal.models.base import utcnow
from portal.models.users import User

PREFIX = "tip_"  # "tuition invoice portal": lets secret scanners and people recognise a token
# The lifetimes a user may choose, in days. No "never": a forgotten token in a script or a CI
# secret should die on its own; a year is the longest (README, "API").
EXPIRY_CHOICES = (30, 90, 365)
DEFAULT_EXPIRY_DAYS = 90
MAX_NAME = 100
# last_used_at is written at most this often, so a busy script costs one UPDATE a minute.
TOUCH_INTERVAL = timedelta(seconds=60)


class TokenError(ValueError):
    """A token cannot be made as asked (the field and the reason)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(
    user: User, *, name: str, expires_in_days: int | None = DEFAULT_EXPIRY_DAYS, now: datetime | None = None
) -> tuple[ApiToken, str]:
    """Add a token for `user` and audit `api_token.created` (the caller commits).

    Returns the row and the secret, which is never stored and cannot be shown again.
    Raises TokenError for an empty or too long name or a lifetime not offered.
    """
    name = (name or "").strip()
    if not name:
        raise TokenError("name", "a name is required, so you can tell your tokens apart")
    if len(name) > MAX_NAME:
        raise TokenError("name", f"use at most {MAX_NAME} characters")
    if expires_in_days not in EXPIRY_CHOICES:
        raise TokenError("expires_in_days", "choose 30, 90 or 365 days")
    now = now or utcnow()
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=token_hash(secret),
        prefix=secret[: len(PREFIX) + 4],
        role=user.role.value,
        partner_id=user.partner_id,
        customer_id=user.customer_id,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days),
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        "api_token.created",
        subject=row,
        subject_type="ApiToken",
        actor=user,
        partner_id=user.partner_id,
        customer_id=user.customer_id,
        details={"name": name, "prefix": row.prefix, "expires_at": row.expires_at.isoformat()},
    )
    return row, secret


def for_user(user: User) -> list[ApiToken]:
    """The user's tokens, newest first (revoked and expired ones too: the list says which)."""
    return list(
        db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc()))
    )


def lookup(secret: str | None, *, now: datetime | None = None) -> ApiToken | None:
    """The usable token this secret names, with its user; None if unknown, expired, revoked, or its
    user is inactive or no longer has the role and tenant the token was made with."""
    if not secret or not isinstance(secret, str) or len(secret) > 200 or not secret.startswith(PREFIX):
        return None
    now = now or utcnow()
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(secret)))
    if row is None or not row.is_usable(now):
        return None
    user = row.user
    if (
        user is None
        or not user.active
        or user.role.value != row.role
        or user.partner_id != row.partner_id
        or user.customer_id != row.customer_id
    ):
        return None
    return row


def touch(row: ApiToken, *, now: datetime | None = None) -> bool:
    """Note that the token was used, at most once per TOUCH_INTERVAL; True if a write is pending."""
    now = now or utcnow()
    if row.last_used_at is not None and now - row.last_used_at < TOUCH_INTERVAL:
        return False
    row.last_used_at = now
    return True


def revoke(row: ApiToken, *, by: User, now: datetime | None = None) -> bool:
    """Revoke a token now (a guarded UPDATE: two clicks revoke it once) and audit `api_token.revoked`.

    Returns True if this call revoked it. The caller checks that `by` may, and commits.
    """
    now = now or utcnow()
    result = db.session.execute(
        update(ApiToken)
        .where(ApiToken.id == row.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    row.revoked_at = now
    audit.record(
        "api_token.revoked",
        subject=row,
        subject_type="ApiToken",
        actor=by,
        partner_id=row.partner_id,
        customer_id=row.customer_id,
        details={"name": row.name, "prefix": row.prefix},
    )
    return True
