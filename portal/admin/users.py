"""Admin pages for login accounts: the list, invitations, role changes, signing out, deactivation.

The rules and audit events live in `portal.accounts.users`; these views parse, call, and report.
Destructive actions (deactivating a user) need a confirmation and a reason.
"""

from __future__ import annotations

import logging

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from portal import accounts
from portal.admin import bp
from portal.admin.console_forms import (
    NONE,
    DeactivateForm,
    InviteForm,
    RoleForm,
    fill_tenant_choices,
    form_error,
)
from portal.auth import current_session, sessions
from portal.auth.password import INVITE, send_password_mail
from portal.core.mail import MailError
from portal.extensions import db
from portal.models import Role, User
from portal.web.actions import saved
from portal.web.forms import EmptyForm
from portal.web.pagination import paginate

log = logging.getLogger(__name__)
PAGE_SIZE = 50


def _me() -> User:
    return current_user._get_current_object()


@bp.route("/users")
def users():
    """Every user with role, tenant, state and last login, 50 a page; filter by role or search."""
    stmt = select(User).order_by(User.email)
    role = request.args.get("role", "")
    if role in {r.value for r in Role}:
        stmt = stmt.where(User.role == Role(role))
    q = request.args.get("q", "").strip().lower()
    if q:
        stmt = stmt.where(or_(func.lower(User.email).like(f"%{q}%"), func.lower(User.name).like(f"%{q}%")))
    page = paginate(stmt, per_page=PAGE_SIZE)
    return render_template(
        "admin/console/users.html",
        users=page.items,
        role=role,
        q=q,
        page=page.page,
        pages=page.pages,
        form=EmptyForm(),
    )


def _mail_invitation(user: User) -> bool:
    try:
        send_password_mail(user, INVITE, invited_by=current_user.name or current_user.email)
    except MailError as exc:
        log.warning("invitation mail to user %s failed: %s", user.id, exc)
        flash(
            f"The invitation email to {user.email} could not be sent ({exc}). Try “Resend invitation”.",
            "error",
        )
        return False
    return True


@bp.route("/users/invite", methods=["GET", "POST"])
def user_invite():
    """Invite a user by email: a one-time link (valid 7 days) to choose a password."""
    form = InviteForm()
    fill_tenant_choices(form)
    if form.validate_on_submit():
        with saved(accounts.ValidationError, flash_error=False) as outcome:
            user = accounts.invite_user(
                email=form.email.data,
                name=form.name.data,
                role=form.role.data,
                partner_id=form.partner.data,
                customer_id=form.customer.data,
                acting_user=_me(),
            )
        if outcome.ok:
            if _mail_invitation(user):
                flash(f"Invitation sent to {user.email}.", "success")
            return redirect(url_for("admin.users"))
        form_error(form, outcome.error)
    status = 400 if form.errors else 200
    return render_template("admin/console/user_invite.html", form=form), status


@bp.route("/users/<id:user_id>/resend-invite", methods=["POST"])
def user_resend_invite(user_id: int):
    """Mail a new invitation to a user who has not chosen a password yet."""
    user = db.get_or_404(User, user_id)
    if EmptyForm().validate_on_submit():
        try:
            accounts.reinvite_user(user, acting_user=_me())
        except accounts.ValidationError as exc:
            flash(exc.message, "error")
        else:
            db.session.commit()
            if _mail_invitation(user):
                flash(f"Invitation sent again to {user.email}.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<id:user_id>", methods=["GET", "POST"])
def user_detail(user_id: int):
    """One user: change the role (and tenant), audited with before/after. Admins cannot demote themselves."""
    user = db.get_or_404(User, user_id)
    form = RoleForm()
    fill_tenant_choices(form)
    if not form.is_submitted():
        form.role.data = user.role.value
        form.partner.data = user.partner_id or NONE
        form.customer.data = user.customer_id or NONE
    if form.validate_on_submit():
        try:
            change = accounts.change_role(
                user,
                role=form.role.data,
                partner_id=form.partner.data,
                customer_id=form.customer.data,
                acting_user=_me(),
            )
        except accounts.ValidationError as exc:
            form_error(form, exc)
        else:
            if change["after"]:
                db.session.commit()
                flash(f"{user.email} is now {user.role.value}.", "success")
            else:
                flash("Nothing changed.", "info")
            return redirect(url_for("admin.user_detail", user_id=user.id))
    status = 400 if form.errors else 200
    return render_template(
        "admin/console/user_detail.html",
        user=user,
        form=form,
        empty=EmptyForm(),
        open_sessions=len(sessions.active_for(user)),
    ), status


@bp.route("/users/<id:user_id>/sign-out-everywhere", methods=["POST"])
def user_sign_out_everywhere(user_id: int):
    """End every session of the user at once (for a lost laptop or a suspected stolen cookie); audited.

    The admin's own current session is kept when they do this to themselves.
    """
    user = db.get_or_404(User, user_id)
    if EmptyForm().validate_on_submit():
        keep = current_session() if user.id == current_user.id else None
        ended = sessions.sign_out_everywhere(user, by=_me(), keep=keep)
        db.session.commit()
        plural = "" if ended == 1 else "s"
        flash(f"{user.email} is signed out everywhere ({ended} session{plural} ended).", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.route("/users/<id:user_id>/deactivate", methods=["GET", "POST"])
def user_deactivate(user_id: int):
    """Confirm, with a reason, and deactivate a user: their sessions end at once (400 without reason)."""
    user = db.get_or_404(User, user_id)
    form = DeactivateForm()
    # The same refusals as accounts.deactivate_user, checked first so the page itself can explain them.
    if user.id == current_user.id:
        flash("You cannot deactivate your own account; ask another administrator.", "error")
        return render_template("admin/console/user_deactivate.html", user=user, form=form, self_=True), 400
    if not user.active:
        flash(f"{user.email} is already deactivated.", "info")
        return redirect(url_for("admin.user_detail", user_id=user.id))
    if form.validate_on_submit():
        accounts.deactivate_user(user, reason=form.reason.data, acting_user=_me())
        db.session.commit()
        flash(f"{user.email} is deactivated and logged out.", "success")
        return redirect(url_for("admin.user_detail", user_id=user.id))
    status = 400 if form.errors else 200
    return render_template("admin/console/user_deactivate.html", user=user, form=form, self_=False), status


@bp.route("/users/<id:user_id>/reactivate", methods=["POST"])
def user_reactivate(user_id: int):
    """Let a deactivated user log in again (with their old password); audited with before/after."""
    user = db.get_or_404(User, user_id)
    if EmptyForm().validate_on_submit() and accounts.reactivate_user(user, acting_user=_me()):
        db.session.commit()
        flash(f"{user.email} can log in again.", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))
