"""Server-side login sessions: start one per login, look it up on each request, end it for real.

The signed cookie holds only a random token; the `user_sessions` row (keyed by the token's SHA-256)
decides whether it still works. Nothing here reads the request: callers pass the IP and user agent.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from portal.core import audit
from portal.extensions import db
from portal.models.base import utcnow
from portal.models.sessions import SessionEnd, UserSession
from portal.models.users import User

# last_seen_at is written at most this often, so an active user costs one UPDATE a minute, not
# one per request; the idle timeout is therefore exact to within this interval.
TOUCH_INTERVAL = timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(user: User, *, ip: str | None, user_agent: str | None) -> tuple[UserSession, str]:
    """Add a new session row for `user` (the caller commits); return it and the cookie's token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = UserSession(
        user_id=user.id,
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        ip=(ip or None) and ip[:45],
        user_agent=(user_agent or "")[:300],
    )
    db.session.add(row)
    db.session.flush()
    return row, token


def find(token: str | None) -> UserSession | None:
    """The session row a cookie's token names (ended or not), or None."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    return db.session.scalar(select(UserSession).where(UserSession.token_hash == token_hash(token)))


def expiry(row: UserSession, *, now: datetime, idle_minutes: int, absolute_hours: int) -> SessionEnd | None:
    """Why `row` has run out at `now` (idle too long, or older than the absolute lifetime), or None."""
    if now - row.created_at >= timedelta(hours=absolute_hours):
        return SessionEnd.EXPIRED
    if now - row.last_seen_at >= timedelta(minutes=idle_minutes):
        return SessionEnd.IDLE
    return None


def touch(row: UserSession, *, now: datetime) -> bool:
    """Move last_seen_at to `now` if it is older than TOUCH_INTERVAL; True if a write is pending."""
    if now - row.last_seen_at < TOUCH_INTERVAL:
        return False
    row.last_seen_at = now
    return True


def end(row: UserSession, reason: SessionEnd, *, now: datetime | None = None) -> bool:
    """End one session if it is still open (a guarded UPDATE, so two requests cannot both end it).

    Returns True if this call ended it. The caller audits and commits.
    """
    now = now or utcnow()
    result = db.session.execute(
        update(UserSession)
        .where(UserSession.id == row.id, UserSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason.value)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(row)
    return result.rowcount == 1


def end_all(user: User, reason: SessionEnd, *, keep: UserSession | None = None) -> int:
    """End every open session of `user` except `keep`; return how many ended (the caller commits)."""
    stmt = (
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason.value)
        .execution_options(synchronize_session=False)
    )
    if keep is not None:
        stmt = stmt.where(UserSession.id != keep.id)
    return db.session.execute(stmt).rowcount


def active_for(user: User) -> list[UserSession]:
    """The user's open sessions, most recently used first."""
    return list(
        db.session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
            .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
        )
    )


def sign_out_everywhere(user: User, *, by: User | None, keep: UserSession | None = None) -> int:
    """An admin's (or the user's own) "Sign out everywhere": end the sessions and audit it."""
    ended = end_all(user, SessionEnd.SIGNED_OUT_EVERYWHERE, keep=keep)
    audit.record(
        "user.signed_out_everywhere",
        subject=user,
        actor=by,
        details={"sessions_ended": ended, "kept_current": keep is not None},
    )
    return ended
