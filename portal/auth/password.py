"""Password pages: "forgot your password?" and setting a password from an invitation or reset link.

The forgot page answers the same whatever the email, so it cannot tell who has an account.
"""

from __future__ import annotations

import logging

from flask import current_app, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import EmailField, PasswordField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from portal import jobs
from portal.accounts import MIN_PASSWORD
from portal.auth import bp, sessions
from portal.auth.password_policy import password_problem
from portal.auth.tokens import INVITE, MAX_AGE, RESET, TokenError, password_url, read_token
from portal.core import audit
from portal.core.mail import render_mail, send_mail
from portal.extensions import db, limiter
from portal.models.sessions import SessionEnd
from portal.models.users import User

log = logging.getLogger(__name__)

SENT_MESSAGE = (
    "If an account exists for that address, we have sent it a link to set a new password. "
    "The link works for one hour."
)


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    submit = SubmitField("Send me a link")


class SetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[
            DataRequired(),
            Length(min=MIN_PASSWORD, max=1024, message=f"Use at least {MIN_PASSWORD} characters."),
        ],
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
    )
    submit = SubmitField("Set password")


def refuse_weak_password(field, *, email: str) -> bool:
    """Add the reason to `field`'s errors if its password is common or guessable; True if refused."""
    problem = password_problem(field.data or "", email=email)
    if problem:
        field.errors = [*field.errors, problem]
    return problem is not None


def send_password_mail(user: User, purpose: str, *, invited_by: str = "") -> str:
    """Mail `user` a one-time link to set a password; raises MailError if it cannot be sent."""
    url = password_url(user, purpose)
    hours = MAX_AGE[purpose] // 3600
    text, html = render_mail(
        f"password_{purpose}", user=user, url=url, hours=hours, days=hours // 24, invited_by=invited_by
    )
    subject = (
        "You are invited to the Tuition Invoice Portal"
        if purpose == INVITE
        else "Set a new password for the Tuition Invoice Portal"
    )
    return send_mail([user.email], subject, text=text, html=html)


def mail_password_reset(user_id: int) -> dict:
    """Job: mail a reset link to the user (if still active). MailError fails the attempt, so the job
    is retried with the usual back-off and, in the end, shows among the admin's failed jobs."""
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        return {"status": "skipped", "reason": "no such active user"}
    send_password_mail(user, RESET)
    return {"status": "sent"}


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def forgot_password():
    """Ask for a reset link. Always the same answer, so the page reveals no account; 429 if rushed."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.scalar(select(User).where(func.lower(User.email) == email))
        if user is not None and user.active:
            audit.record("auth.password_reset_requested", subject=user, details={"email": email})
            # Mailed by a job, not here: the answer then takes as long whether or not the account
            # exists, and a slow or failing mail server neither delays nor changes it.
            jobs.enqueue(mail_password_reset, user.id, description=f"password reset mail to user {user.id}")
            db.session.commit()
        flash(SENT_MESSAGE, "info")
        return redirect(url_for("auth.login"))
    status = 400 if form.errors else 200
    return render_template("auth/forgot_password.html", form=form), status


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """Set a password from an invitation or reset link; the link then stops working (400 if unusable)."""
    try:
        grant = read_token(token)
    except TokenError as exc:
        return render_template("auth/set_password.html", form=None, error=str(exc)), 400
    form = SetPasswordForm()
    if form.validate_on_submit() and not refuse_weak_password(form.password, email=grant.user.email):
        user = grant.user
        user.set_password(form.password.data)  # bumps session_version: the link is now used
        user.active = True
        # Whoever knew the old password is signed out everywhere, at once.
        ended = sessions.end_all(user, SessionEnd.PASSWORD_CHANGED)
        audit.record(
            "auth.password_set",
            subject=user,
            actor=user,
            details={"purpose": grant.purpose, "sessions_ended": ended},
        )
        db.session.commit()
        flash("Your password is set. You can log in now.", "success")
        return redirect(url_for("auth.login"))
    status = 400 if form.errors else 200
    return render_template(
        "auth/set_password.html", form=form, error=None, user=grant.user, purpose=grant.purpose
    ), status


__all__ = ["INVITE", "RESET", "mail_password_reset", "send_password_mail"]
