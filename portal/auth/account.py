"""A signed-in user's own account pages: the active sessions (ending any or all others) and the password.

Every query here is scoped to the current user: another user's session answers 404.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user
from wtforms import PasswordField, SubmitField
from wtforms.validators import DataRequired, Length

from portal.auth import bp, current_session, sessions
from portal.auth.password import SetPasswordForm, refuse_weak_password
from portal.core import audit
from portal.extensions import db
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
