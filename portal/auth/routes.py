"""Login and logout pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from portal.auth import SESSION_TOKEN_KEY, bp, current_session, home_url_for, sessions
from portal.auth.forms import LoginForm
from portal.core import audit
from portal.errors import error_response
from portal.extensions import db, limiter
from portal.models.base import utcnow
from portal.models.sessions import SessionEnd
from portal.models.users import User, verify_dummy_password
from portal.web.forms import EmptyForm


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _login_account_key() -> str:
    """The per-account login limit's key: the normalized email typed, whatever the client address."""
    return (request.form.get("email") or "").strip().lower()[:254]


def _login_failed(response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
# Per account: only failed attempts count, from any address, so that guessing one account's password
# from many addresses is slowed too, while its owner's successful logins never use the allowance up.
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    methods=["POST"],
    key_func=_login_account_key,
    scope="login-account",
    deduct_when=_login_failed,
)
def login():
    """Show the login form; on POST check the password and start a new session.

    A wrong email and a wrong password get the same message. Too many attempts answer 429.
    """
    if current_user.is_authenticated:
        return redirect(home_url_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(select(User).where(func.lower(User.email) == email))
        if user is None:
            verify_dummy_password(form.password.data)
        if user is None or not user.check_password(form.password.data) or not user.active:
            reason = (
                "unknown email" if user is None else ("inactive" if not user.active else "wrong password")
            )
            audit.record(
                "auth.login_failed",
                subject=user,
                subject_type="User",
                details={"email": email, "reason": reason},
            )
            db.session.commit()
            flash("Wrong email or password.", "error")
            return render_template("auth/login.html", form=form), 401
        next_url = _safe_next(request.args.get("next"))
        session.clear()  # a new session on login: nothing from before survives
        row, token = sessions.start(
            user, ip=request.remote_addr, user_agent=request.headers.get("User-Agent")
        )
        login_user(user)
        session.permanent = True
        session[SESSION_TOKEN_KEY] = token
        user.last_login_at = utcnow()
        audit.record("auth.login", subject=user, actor=user, details={"session_id": row.id})
        db.session.commit()
        return redirect(next_url or home_url_for(user))
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.app_errorhandler(RateLimitExceeded)
def login_rate_limited(exc):
    from portal.api import problems

    if problems.is_api_request():
        return problems.from_exception(exc)  # the API's per-token limit: a problem with Retry-After
    if request.endpoint != "auth.login":
        return error_response(429)
    form = LoginForm()
    flash(f"Too many login attempts. Please wait and try again later (limit: {exc.description}).", "error")
    return render_template("auth/login.html", form=form), 429


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """End the session here and on the server, so a copy of the cookie no longer works either.

    POST only, with CSRF, so a link elsewhere cannot log a user out.
    """
    if EmptyForm().validate_on_submit():
        user = current_user._get_current_object()
        row = current_session()
        if row is not None:
            sessions.end(row, SessionEnd.LOGOUT)
        audit.record("auth.logout", subject=user, actor=user, details={"session_id": row and row.id})
        db.session.commit()
        logout_user()
        session.clear()
        flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))
