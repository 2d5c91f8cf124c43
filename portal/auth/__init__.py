"""Authentication: login/logout, session rules, and one access decorator per role.

Every login starts a server-side session (portal/auth/sessions.py); each request checks its row, so
logout, a password change, deactivation or "sign out everywhere" end it at once. A session also ends
after SESSION_IDLE_MINUTES without a request and SESSION_ABSOLUTE_HOURS after the login.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_login import current_user, logout_user

from portal.auth import sessions
from portal.core import audit
from portal.extensions import db, login_manager
from portal.models.base import utcnow
from portal.models.sessions import SessionEnd
from portal.models.users import Role, User

bp = Blueprint("auth", __name__)

SESSION_TOKEN_KEY = "sid"  # noqa: S105  (the session key that holds the token, not a secret)


def role_required(*roles: Role):
    """Allow the view to users of these roles; others get 403, anonymous users the login page."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


admin_required = role_required(Role.ADMIN)
partner_required = role_required(Role.PARTNER)
customer_required = role_required(Role.CUSTOMER)


def home_url_for(user: User) -> str:
    return {
        Role.ADMIN: url_for("admin.index"),
        Role.PARTNER: url_for("partner.uploads"),
        Role.CUSTOMER: url_for("customer.index"),
    }[user.role]


def current_session():
    """The `UserSession` row of this request's login, or None (anonymous)."""
    return g.get("user_session") if current_user.is_authenticated else None


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The user of this cookie, only while its session row is open and the user still active.

    The cookie's id also names the user's `session_version` (bumped when the password is set or
    the role changes), a second lock beside the row.
    """
    if request.path.startswith("/api/"):
        return None  # the API authenticates by token only (portal/api/auth.py), never by cookie
    uid, _, version = user_id.partition(":")
    if not uid.isdigit():
        return None
    row = sessions.find(session.get(SESSION_TOKEN_KEY))
    if row is None or row.ended_at is not None or row.user_id != int(uid):
        return None
    user = db.session.get(User, int(uid))
    if user is None or not user.active or str(user.session_version) != version:
        return None
    g.user_session = row
    return user


def _to_login(message: str):
    logout_user()
    session.clear()
    flash(message, "info")
    return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))


def init_app(app) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see this page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @app.before_request
    def enforce_session():
        """Drop a cookie whose session has ended; end one that ran out; note activity once a minute.

        A cookie of an ended session makes the request anonymous, so a page answers with the login
        page and a POST changes nothing (the view's login check refuses it).
        """
        if request.endpoint == "static" or "_user_id" not in session or request.path.startswith("/api/"):
            return None
        if not current_user.is_authenticated:
            if request.blueprint == "auth":  # the login and password pages: carry on, anonymous
                logout_user()
                session.clear()
                return None
            return _to_login("Your session has ended. Please log in again.")
        row = g.user_session
        now = utcnow()
        reason = sessions.expiry(
            row,
            now=now,
            idle_minutes=current_app.config["SESSION_IDLE_MINUTES"],
            absolute_hours=current_app.config["SESSION_ABSOLUTE_HOURS"],
        )
        if reason is not None:
            user = current_user._get_current_object()
            if sessions.end(row, reason, now=now):
                audit.record(
                    "auth.session_expired",
                    subject=user,
                    actor=user,
                    details={"session_id": row.id, "reason": reason.value},
                )
            db.session.commit()
            if reason == SessionEnd.IDLE:
                minutes = current_app.config["SESSION_IDLE_MINUTES"]
                return _to_login(
                    f"Your session ended after {minutes} minutes without activity. Please log in again."
                )
            hours = current_app.config["SESSION_ABSOLUTE_HOURS"]
            return _to_login(f"Your session ended {hours} hours after you logged in. Please log in again.")
        if sessions.touch(row, now=now):
            db.session.commit()
        return None

    from portal.auth import account, password, routes  # noqa: F401  (registers the views on bp)
