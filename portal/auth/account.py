"""A signed-in user's own account pages: the active sessions (ending any or all others), the password,
and personal access tokens for the REST API.

Every query here is scoped to the current user: another user's session answers 404.
"""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from portal.auth import api_tokens, bp, current_session, sessions
from portal.auth.password import SetPasswordForm, refuse_weak_password
from portal.core import audit
from portal.extensions import db
from portal.models.api import ApiToken
from portal.models.base import utcnow
from portal.models.sessions import SessionEnd, UserSession
from portal.web.forms import EmptyForm


class ChangePasswordForm(SetPasswordForm):
    """The set-password form (same rules for the new password) plus the current password."""

    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField("Change password")


@bp.route("/account/sessions")
@login_required
def account_sessions():
    """The user's open sessions (this one marked), each with an End button, and "End all others"."""
    return render_template(
        "auth/sessions.html",
        rows=sessions.active_for(current_user),
        this=current_session(),
        form=EmptyForm(),
    )


@bp.route("/account/sessions/<id:session_id>/end", methods=["POST"])
@login_required
def end_session(session_id: int):
    """End one of the user's other sessions at once (404 if it is not theirs)."""
    row = db.session.get(UserSession, session_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    if EmptyForm().validate_on_submit():
        if current_session() is not None and row.id == current_session().id:
            flash("To end this session, log out.", "info")
        elif sessions.end(row, SessionEnd.ENDED_BY_USER):
            audit.record(
                "auth.session_ended",
                subject=current_user._get_current_object(),
                details={"session_id": row.id, "reason": SessionEnd.ENDED_BY_USER.value},
            )
            db.session.commit()
            flash("That session has ended: whoever used it is signed out.", "success")
    return redirect(url_for("auth.account_sessions"))


@bp.route("/account/sessions/end-others", methods=["POST"])
@login_required
def end_other_sessions():
    """Sign out everywhere but here."""
    if EmptyForm().validate_on_submit():
        user = current_user._get_current_object()
        ended = sessions.sign_out_everywhere(user, by=user, keep=current_session())
        db.session.commit()
        plural = "" if ended == 1 else "s"
        flash(f"{ended} other session{plural} ended." if ended else "No other session was open.", "success")
    return redirect(url_for("auth.account_sessions"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change the password (the current one is asked again); every other session ends at once."""
    form = ChangePasswordForm()
    user = current_user._get_current_object()
    if form.validate_on_submit():
        if not user.check_password(form.current.data):
            form.current.errors = [*form.current.errors, "This is not your current password."]
        elif not refuse_weak_password(form.password, email=user.email):
            user.set_password(form.password.data)
            ended = sessions.end_all(user, SessionEnd.PASSWORD_CHANGED, keep=current_session())
            audit.record("auth.password_changed", subject=user, actor=user, details={"sessions_ended": ended})
            db.session.commit()
            login_user(user)  # the cookie names the new session_version, so this session goes on
            flash(
                "Your password is changed."
                + (f" {ended} other session{'' if ended == 1 else 's'} ended." if ended else ""),
                "success",
            )
            return redirect(url_for("auth.account_sessions"))
    status = 400 if form.errors else 200
    return render_template("auth/change_password.html", form=form), status


class ApiTokenForm(FlaskForm):
    """A new API token: a name to tell it apart and how long it lives (no "never": README, "API")."""

    name = StringField(
        "Token name",
        validators=[DataRequired(message="Give the token a name."), Length(max=api_tokens.MAX_NAME)],
        description="What uses it, e.g. “Payroll export script”.",
    )
    expires_in_days = SelectField(
        "Expires after",
        choices=[(d, f"{d} days") for d in api_tokens.EXPIRY_CHOICES],
        coerce=int,
        default=api_tokens.DEFAULT_EXPIRY_DAYS,
    )
    submit = SubmitField("Create token")


def _tokens_page(form: ApiTokenForm, *, secret: str | None = None, created=None, status: int = 200):
    return (
        render_template(
            "auth/api_tokens.html",
            form=form,
            tokens=api_tokens.for_user(current_user),
            secret=secret,
            created=created,
            now=utcnow(),
        ),
        status,
    )


@bp.route("/account/api-tokens", endpoint="api_tokens")
@login_required
def api_tokens_page():
    """The user's API tokens (active, expired, revoked) and the form to create one."""
    return _tokens_page(ApiTokenForm(formdata=None))


@bp.route("/account/api-tokens", methods=["POST"])
@login_required
def api_token_create():
    """Create a token and show its secret once, on this answer only (it is stored hashed)."""
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _tokens_page(form, status=400)
    user = current_user._get_current_object()
    try:
        row, secret = api_tokens.create(user, name=form.name.data, expires_in_days=form.expires_in_days.data)
    except api_tokens.TokenError as exc:
        getattr(form, exc.field).errors = [exc.message]
        return _tokens_page(form, status=400)
    db.session.commit()
    response = make_response(
        _tokens_page(ApiTokenForm(formdata=None), secret=secret, created=row, status=201)
    )
    response.headers["Cache-Control"] = "no-store"  # the secret must not stay in a cache
    return response


@bp.route("/account/api-tokens/<id:token_id>/revoke", methods=["GET", "POST"])
@login_required
def api_token_revoke(token_id: int):
    """Ask to confirm (GET), then revoke (POST) one of the user's tokens; another user's answers 404."""
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    form = EmptyForm()
    if request.method == "POST" and form.validate_on_submit():
        if api_tokens.revoke(row, by=current_user._get_current_object()):
            db.session.commit()
            flash(f"Token “{row.name}” revoked: requests that send it are refused from now on.", "success")
        else:
            flash(f"Token “{row.name}” was already revoked.", "info")
        return redirect(url_for("auth.api_tokens"))
    return render_template("auth/api_token_revoke.html", token=row, form=form)
