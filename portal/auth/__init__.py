"""Authentication: login/logout, session rules, and one access decorator per role.

Sessions expire after SESSION_IDLE_MINUTES without a request; a login always starts a new session.
"""

from __future__ import annotations

import time
from functools import wraps

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, logout_user

from portal.extensions import db, login_manager
from portal.models.users import Role, User

bp = Blueprint("auth", __name__)


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


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    uid, _, version = user_id.partition(":")
    if not uid.isdigit():
        return None
    user = db.session.get(User, int(uid))
    if user is None or not user.active or str(user.session_version) != version:
        return None
    return user


def init_app(app) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see this page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @app.before_request
    def enforce_idle_timeout():
        if request.endpoint == "static" or not current_user.is_authenticated:
            return None
        now = int(time.time())
        idle_limit = current_app.config["SESSION_IDLE_MINUTES"] * 60
        last_seen = session.get("last_seen", now)
        if now - last_seen > idle_limit:
            logout_user()
            session.clear()
            flash(
                f"Your session ended after {current_app.config['SESSION_IDLE_MINUTES']} minutes without "
                "activity. Please log in again.",
                "info",
            )
            return redirect(
                url_for("auth.login", next=request.full_path if request.method == "GET" else None)
            )
        session["last_seen"] = now
        return None

    from portal.auth import password, routes  # noqa: F401  (registers the views on bp)
