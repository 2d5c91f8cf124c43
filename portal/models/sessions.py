"""Server-side login sessions: one row per login, checked on every request, ended for real.

The browser's signed cookie carries only an opaque random token; the row keeps its SHA-256, so a
copy of the table cannot be replayed as cookies. Ending a session sets `ended_at` and a reason.
"""

from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow
from portal.models.users import User


class SessionEnd(enum.StrEnum):
    """Why a session ended (shown to the user and in the audit log)."""

    LOGOUT = "logout"
    IDLE = "idle"
    EXPIRED = "expired"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105  (a reason, not a password)
    DEACTIVATED = "deactivated"
    ROLE_CHANGED = "role_changed"
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
    ENDED_BY_USER = "ended_by_user"


class UserSession(db.Model):
    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_ended", "user_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_seen_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    ended_at = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32))

    user: Mapped[User] = relationship()

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def __repr__(self) -> str:
        return f"<UserSession {self.id} user={self.user_id} ended={self.end_reason}>"
