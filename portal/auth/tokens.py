"""Signed, expiring, one-time links for setting a password (an invitation or a reset).

A token carries the user id and the user's `session_version`; setting the password bumps that
version, so a used token (or one issued before a deactivation) no longer matches and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.extensions import db
from portal.models.users import User

INVITE = "invite"
RESET = "reset"
MAX_AGE = {INVITE: 7 * 24 * 3600, RESET: 3600}
# One salt per purpose: a reset token cannot pass for an invitation (which lives longer).
_SALTS = {INVITE: "portal.auth.invite", RESET: "portal.auth.password-reset"}


class TokenError(ValueError):
    """The link cannot be used; the message says why in words a user understands."""


@dataclass(frozen=True)
class PasswordToken:
    user: User
    purpose: str


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALTS[purpose])


def make_token(user: User, purpose: str) -> str:
    """A URL-safe token for `user` (flushed, so it has an id and a session version)."""
    if purpose not in _SALTS:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _serializer(purpose).dumps({"u": user.id, "v": user.session_version})


def read_token(token: str) -> PasswordToken:
    """Return the user and purpose of a valid token; raise TokenError if invalid, expired or used."""
    for purpose in _SALTS:
        try:
            data = _serializer(purpose).loads(token, max_age=MAX_AGE[purpose])
        except SignatureExpired as exc:
            hint = (
                "Ask an administrator for a new invitation."
                if purpose == INVITE
                else ("Ask for a new one on the “Forgot your password?” page.")
            )
            raise TokenError(f"This link has expired. {hint}") from exc
        except BadSignature:
            continue
        user = db.session.get(User, data.get("u")) if isinstance(data, dict) else None
        if user is None or not user.active or data.get("v") != user.session_version:
            raise TokenError(
                "This link has already been used or is no longer valid. "
                "Ask for a new one on the “Forgot your password?” page."
            )
        return PasswordToken(user=user, purpose=purpose)
    raise TokenError("This link is not valid. Check that you copied the whole address from the email.")


def password_url(user: User, purpose: str) -> str:
    """The absolute link a mail carries (PORTAL_BASE_URL, since a job or CLI has no request)."""
    base = current_app.config["PORTAL_BASE_URL"].rstrip("/")
    return f"{base}/set-password/{make_token(user, purpose)}"
