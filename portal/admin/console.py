"""Admin console: partners, customers, employees (and roster import), users, and failed jobs.

Each edit writes an audit event with the changed fields only, before and after; destructive actions
(deactivating a user) need a confirmation and a reason.
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from portal import accounts, jobs
from portal.accounts.roster import RosterFileError, import_roster
from portal.admin import bp
from portal.admin.console_forms import (
    NONE,
    CustomerForm,
    DeactivateForm,
    EmployeeForm,
    InviteForm,
    PartnerForm,
    RoleForm,
    RosterForm,
)
from portal.auth import current_session, sessions
from portal.auth.password import INVITE, send_password_mail
from portal.core import audit
from portal.core.mail import MailError
from portal.extensions import db
from portal.models import (
    Customer,
    CustomerKind,
    Employee,
    JobRecord,
    JobStatus,
    Partner,
    PartnerKind,
    Role,
    User,
)
from portal.models.base import utcnow
from portal.models.sessions import SessionEnd
from portal.web.forms import EmptyForm
from portal.web.inputs import page_arg

log = logging.getLogger(__name__)
PAGE_SIZE = 50


# --- helpers ---------------------------------------------------------------------------------


def _plain(value):
    return value.value if isinstance(value, enum.Enum) else value


def save_edit(obj, values: dict, action: str, label: str, **scope) -> None:
    """Apply an admin's edit: audit `action` with only the changed fields (before/after), commit, say so.

    Nothing changed means no event and no commit.
    """
    change = apply_changes(obj, values)
    if not change["after"]:
        flash("Nothing changed.", "info")
        return
    audit.record(action, subject=obj, details=change, **scope)
    db.session.commit()
    flash(f"{label} saved.", "success")


def apply_changes(obj, values: dict) -> dict:
    """Set `values` on `obj`; return {"before": ..., "after": ...} of the fields that changed."""
    before, after = {}, {}
    for key, value in values.items():
        old = getattr(obj, key)
        if old != value:
            before[key], after[key] = _plain(old), _plain(value)
            setattr(obj, key, value)
    return {"before": before, "after": after}


def _form_error(form, exc: accounts.ValidationError, aliases: dict | None = None) -> None:
    """Show a domain ValidationError next to its form field (or, if the form has none, at the top)."""
    name = (aliases or {}).get(exc.field, exc.field)
    field = getattr(form, name, None)
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.message] if isinstance(field.errors, list) else [exc.message]
    else:
        flash(f"{exc.field}: {exc.message}", "error")


def _page() -> int:
    return page_arg()


def _fill_tenant_choices(form) -> None:
    form.partner.choices = [(NONE, "—")] + [
        (p.id, f"{p.name} ({p.slug})") for p in db.session.scalars(select(Partner).order_by(Partner.name))
    ]
    form.customer.choices = [(NONE, "—")] + [
        (c.id, f"{c.code} · {c.name}") for c in db.session.scalars(select(Customer).order_by(Customer.code))
    ]


def _tenant_from(form) -> tuple[Role, int | None, int | None]:
    """The role and tenant ids chosen in `form`, checked like accounts.create_user checks them."""
    role = Role(form.role.data)
    partner_id = form.partner.data or None
    customer_id = form.customer.data or None
    if role == Role.PARTNER:
        if partner_id is None:
            raise accounts.ValidationError("partner", "a partner user needs a partner")
        customer_id = None
    elif role == Role.CUSTOMER:
        if customer_id is None:
            raise accounts.ValidationError("customer", "a customer contact needs a customer")
        partner_id = None
    elif partner_id or customer_id:
        raise accounts.ValidationError("role", "an admin belongs to no partner or customer")
    return role, partner_id, customer_id


# --- partners --------------------------------------------------------------------------------


@bp.route("/partners", methods=["GET", "POST"])
def partners():
    """Every partner, and a form to create one (400 with the error next to the field if invalid)."""
    form = PartnerForm()
    if form.validate_on_submit():
        try:
            partner = accounts.create_partner(
                slug=form.slug.data or "",
                name=form.name.data,
                kind=form.kind.data,
                currency=form.currency.data,
            )
            db.session.commit()
        except accounts.ValidationError as exc:
            db.session.rollback()
            _form_error(form, exc, {"currency": "currency"})
        else:
            flash(f"Partner {partner.name} created.", "success")
            return redirect(url_for("admin.partners"))
    elif not form.is_submitted():
        form.currency.data = "USD"
    rows = db.session.scalars(select(Partner).order_by(Partner.name)).all()
    status = 400 if form.errors else 200
    return render_template("admin/console/partners.html", partners=rows, form=form), status


@bp.route("/partners/<id:partner_id>/edit", methods=["GET", "POST"])
def partner_edit(partner_id: int):
    """Change a partner's name, kind and default currency; audit `partner.updated` (before/after)."""
    partner = db.get_or_404(Partner, partner_id)
    form = PartnerForm(obj=None if request.method == "POST" else partner)
    if request.method == "GET":
        form.kind.data = partner.kind.value
        form.currency.data = partner.default_currency
    if form.validate_on_submit():
        try:
            if not form.name.data.strip():
                raise accounts.ValidationError("name", "a name is required")
            values = {
                "name": form.name.data.strip(),
                "kind": PartnerKind(form.kind.data),
                "default_currency": accounts.check_currency(form.currency.data),
            }
        except accounts.ValidationError as exc:
            _form_error(form, exc)
        else:
            save_edit(partner, values, "partner.updated", f"Partner {values['name']}", partner_id=partner.id)
            return redirect(url_for("admin.partners"))
    status = 400 if form.errors else 200
    return render_template("admin/console/partner_edit.html", partner=partner, form=form), status


# --- customers -------------------------------------------------------------------------------


@bp.route("/customers/new", methods=["GET", "POST"])
def customer_new():
    """Create a customer through accounts.create_customer; errors appear next to their field."""
    form = CustomerForm()
    if not form.is_submitted():
        form.timezone.data, form.invoice_day.data, form.invoicing_enabled.data = "UTC", 1, True
    if form.validate_on_submit():
        try:
            customer = accounts.create_customer(
                code=form.code.data or "",
                name=form.name.data,
                kind=form.kind.data,
                timezone=form.timezone.data.strip(),
                invoice_day=form.invoice_day.data,
            )
            customer.invoicing_enabled = bool(form.invoicing_enabled.data)
            db.session.commit()
        except accounts.ValidationError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            flash(f"Customer {customer.code} created.", "success")
            return redirect(url_for("admin.customer_edit", customer_id=customer.id))
    status = 400 if form.errors else 200
    return render_template("admin/console/customer_form.html", form=form, customer=None), status


@bp.route("/customers/<id:customer_id>/edit", methods=["GET", "POST"])
def customer_edit(customer_id: int):
    """Edit a customer's name, kind, time zone, invoice day and invoicing; audit `customer.updated`."""
    customer = db.get_or_404(Customer, customer_id)
    form = CustomerForm(obj=None if request.method == "POST" else customer)
    if request.method == "GET":
        form.kind.data = customer.kind.value
    if form.validate_on_submit():
        try:
            if not form.name.data.strip():
                raise accounts.ValidationError("name", "a name is required")
            values = {
                "name": form.name.data.strip(),
                "kind": CustomerKind(form.kind.data),
                "timezone": accounts.check_timezone(form.timezone.data.strip()),
                "invoice_day": form.invoice_day.data,
                "invoicing_enabled": bool(form.invoicing_enabled.data),
            }
        except accounts.ValidationError as exc:
            _form_error(form, exc)
        else:
            save_edit(
                customer, values, "customer.updated", f"Customer {customer.code}", customer_id=customer.id
            )
            return redirect(url_for("admin.customer_edit", customer_id=customer.id))
    status = 400 if form.errors else 200
    return render_template("admin/console/customer_form.html", form=form, customer=customer), status


# --- employees -------------------------------------------------------------------------------


def _employees_page(customer: Customer, *, roster_form=None, result=None, file_error=None, status=200):
    q = request.args.get("q", "").strip()
    stmt = select(Employee).where(Employee.customer_id == customer.id)
    if q:
        pattern = f"%{q.lower()}%"
        stmt = stmt.where(
            or_(func.lower(Employee.name).like(pattern), func.lower(Employee.external_id).like(pattern))
        )
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page = _page()
    rows = db.session.scalars(
        stmt.order_by(Employee.name, Employee.id).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    return render_template(
        "admin/console/employees.html",
        customer=customer,
        employees=rows,
        q=q,
        page=page,
        total=total,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        roster_form=roster_form or RosterForm(),
        result=result,
        file_error=file_error,
    ), status


@bp.route("/customers/<id:customer_id>/employees")
def employees(customer_id: int):
    """A customer's employees, searchable by name or employee id, 50 a page; plus the roster import."""
    return _employees_page(db.get_or_404(Customer, customer_id))


@bp.route("/customers/<id:customer_id>/employees/import", methods=["POST"])
def employees_import(customer_id: int):
    """Import a roster CSV: shows created/updated/unchanged and every rejected row (400 if unreadable)."""
    customer = db.get_or_404(Customer, customer_id)
    form = RosterForm()
    if not form.validate_on_submit():
        return _employees_page(customer, roster_form=form, status=400)
    upload = form.file.data
    try:
        result = import_roster(customer, upload.stream, source=upload.filename or "")
    except RosterFileError as exc:
        db.session.rollback()
        form.file.errors = [str(exc)]
        return _employees_page(customer, roster_form=form, file_error=str(exc), status=400)
    db.session.commit()
    return _employees_page(customer, result=result)


def _duplicate_external_id(customer: Customer, external_id: str, exclude_id: int | None = None) -> bool:
    stmt = select(Employee.id).where(Employee.customer_id == customer.id, Employee.external_id == external_id)
    if exclude_id is not None:
        stmt = stmt.where(Employee.id != exclude_id)
    return db.session.scalar(stmt) is not None


@bp.route("/customers/<id:customer_id>/employees/new", methods=["GET", "POST"])
@bp.route("/customers/<id:customer_id>/employees/<id:employee_id>/edit", methods=["GET", "POST"])
def employee_form(customer_id: int, employee_id: int | None = None):
    """Add or edit one employee; audit `employee.created` / `employee.updated` with before/after."""
    customer = db.get_or_404(Customer, customer_id)
    employee = None
    if employee_id is not None:
        employee = db.session.scalar(
            select(Employee).where(Employee.id == employee_id, Employee.customer_id == customer.id)
        )
        if employee is None:
            abort(404)
    form = EmployeeForm(obj=None if request.method == "POST" else employee)
    if form.validate_on_submit():
        values = {
            "external_id": form.external_id.data.strip(),
            "name": form.name.data.strip(),
            "email": (form.email.data or "").strip().lower() or None,
        }
        if _duplicate_external_id(customer, values["external_id"], employee.id if employee else None):
            form.external_id.errors = [f"{customer.code} already has an employee {values['external_id']!r}."]
        elif employee is None:
            employee = Employee(customer_id=customer.id, **values)
            db.session.add(employee)
            db.session.flush()
            audit.record(
                "employee.created",
                subject=employee,
                details={"before": {}, "after": values},
            )
            db.session.commit()
            flash(f"Employee {employee.name} added.", "success")
            return redirect(url_for("admin.employees", customer_id=customer.id))
        else:
            save_edit(employee, values, "employee.updated", f"Employee {values.get('name', employee.name)}")
            return redirect(url_for("admin.employees", customer_id=customer.id))
    status = 400 if form.errors else 200
    return render_template(
        "admin/console/employee_form.html", form=form, customer=customer, employee=employee
    ), status


# --- users -----------------------------------------------------------------------------------


def _user_or_404(user_id: int) -> User:
    return db.get_or_404(User, user_id)


def _tenant_snapshot(user: User) -> dict:
    return {"role": user.role.value, "partner_id": user.partner_id, "customer_id": user.customer_id}


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
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page = _page()
    rows = db.session.scalars(stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return render_template(
        "admin/console/users.html",
        users=rows,
        role=role,
        q=q,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        form=EmptyForm(),
    )


def invite_user(
    *, email: str, name: str, role: Role, partner_id: int | None, customer_id: int | None
) -> User:
    """Create a user with no password (they choose it from the invitation) and audit `user.invited`."""
    email = accounts.check_email(email)
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise accounts.ValidationError("email", f"a user with email {email} already exists")
    if partner_id is not None and db.session.get(Partner, partner_id) is None:
        raise accounts.ValidationError("partner", "choose an existing partner")
    if customer_id is not None and db.session.get(Customer, customer_id) is None:
        raise accounts.ValidationError("customer", "choose an existing customer")
    user = User(
        email=email,
        name=(name or "").strip(),
        role=role,
        partner_id=partner_id,
        customer_id=customer_id,
        password_hash=None,
        active=True,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.invited",
        subject=user,
        partner_id=partner_id,
        customer_id=customer_id,
        details={"email": email, "role": role.value},
    )
    return user


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
    _fill_tenant_choices(form)
    if form.validate_on_submit():
        try:
            role, partner_id, customer_id = _tenant_from(form)
            user = invite_user(
                email=form.email.data,
                name=form.name.data,
                role=role,
                partner_id=partner_id,
                customer_id=customer_id,
            )
            db.session.commit()
        except accounts.ValidationError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            if _mail_invitation(user):
                flash(f"Invitation sent to {user.email}.", "success")
            return redirect(url_for("admin.users"))
    status = 400 if form.errors else 200
    return render_template("admin/console/user_invite.html", form=form), status


@bp.route("/users/<id:user_id>/resend-invite", methods=["POST"])
def user_resend_invite(user_id: int):
    """Mail a new invitation to a user who has not chosen a password yet."""
    user = _user_or_404(user_id)
    if EmptyForm().validate_on_submit():
        if user.password_hash or not user.active:
            flash(f"{user.email} has already set a password or is deactivated.", "error")
        else:
            audit.record("user.invited", subject=user, details={"email": user.email, "resent": True})
            db.session.commit()
            if _mail_invitation(user):
                flash(f"Invitation sent again to {user.email}.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<id:user_id>", methods=["GET", "POST"])
def user_detail(user_id: int):
    """One user: change the role (and tenant), audited with before/after. Admins cannot demote themselves."""
    user = _user_or_404(user_id)
    form = RoleForm()
    _fill_tenant_choices(form)
    if not form.is_submitted():
        form.role.data = user.role.value
        form.partner.data = user.partner_id or NONE
        form.customer.data = user.customer_id or NONE
    if form.validate_on_submit():
        try:
            if user.id == current_user.id:
                raise accounts.ValidationError("role", "you cannot change your own role")
            role, partner_id, customer_id = _tenant_from(form)
        except accounts.ValidationError as exc:
            _form_error(form, exc)
        else:
            change = apply_changes(user, {"role": role, "partner_id": partner_id, "customer_id": customer_id})
            if change["after"]:
                # The user's next request must see the new role and tenant: end their sessions.
                user.session_version += 1
                sessions.end_all(user, SessionEnd.ROLE_CHANGED)
                audit.record("user.role_changed", subject=user, details=change)
                db.session.commit()
                flash(f"{user.email} is now {role.value}.", "success")
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
    user = _user_or_404(user_id)
    if EmptyForm().validate_on_submit():
        keep = current_session() if user.id == current_user.id else None
        ended = sessions.sign_out_everywhere(user, by=current_user._get_current_object(), keep=keep)
        db.session.commit()
        plural = "" if ended == 1 else "s"
        flash(f"{user.email} is signed out everywhere ({ended} session{plural} ended).", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.route("/users/<id:user_id>/deactivate", methods=["GET", "POST"])
def user_deactivate(user_id: int):
    """Confirm, with a reason, and deactivate a user: their sessions end at once (400 without reason)."""
    user = _user_or_404(user_id)
    form = DeactivateForm()
    if user.id == current_user.id:
        flash("You cannot deactivate your own account; ask another administrator.", "error")
        return render_template("admin/console/user_deactivate.html", user=user, form=form, self_=True), 400
    if not user.active:
        flash(f"{user.email} is already deactivated.", "info")
        return redirect(url_for("admin.user_detail", user_id=user.id))
    if form.validate_on_submit():
        user.active = False
        user.session_version += 1  # their password links name the old version: they stop working
        sessions.end_all(user, SessionEnd.DEACTIVATED)
        audit.record(
            "user.deactivated",
            subject=user,
            details={
                "reason": form.reason.data.strip(),
                "before": {"active": True},
                "after": {"active": False},
            },
        )
        db.session.commit()
        flash(f"{user.email} is deactivated and logged out.", "success")
        return redirect(url_for("admin.user_detail", user_id=user.id))
    status = 400 if form.errors else 200
    return render_template("admin/console/user_deactivate.html", user=user, form=form, self_=False), status


@bp.route("/users/<id:user_id>/reactivate", methods=["POST"])
def user_reactivate(user_id: int):
    """Let a deactivated user log in again (with their old password); audited with before/after."""
    user = _user_or_404(user_id)
    if EmptyForm().validate_on_submit() and not user.active:
        user.active = True
        audit.record(
            "user.reactivated", subject=user, details={"before": {"active": False}, "after": {"active": True}}
        )
        db.session.commit()
        flash(f"{user.email} can log in again.", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


# --- failed jobs -----------------------------------------------------------------------------


RECOVERED_SHOWN_DAYS = 7


@bp.route("/jobs")
def failed_jobs():
    """Background jobs that failed for good, newest first, with their error and a Retry button;
    above them, the jobs handed back after their worker died (last 7 days), with their outcome."""
    page = _page()
    recovered = db.session.scalars(
        select(JobRecord)
        .where(
            JobRecord.recoveries > 0,
            JobRecord.recovered_at >= utcnow() - timedelta(days=RECOVERED_SHOWN_DAYS),
        )
        .order_by(JobRecord.recovered_at.desc())
        .limit(PAGE_SIZE)
    ).all()
    stmt = select(JobRecord).where(JobRecord.status == JobStatus.FAILED)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(
        stmt.order_by(JobRecord.finished_at.desc(), JobRecord.created_at.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return render_template(
        "admin/console/jobs.html",
        jobs=rows,
        recovered=recovered,
        recovered_days=RECOVERED_SHOWN_DAYS,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        total=total,
        form=EmptyForm(),
    )


@bp.route("/jobs/<job_id>/retry", methods=["POST"])
def job_retry(job_id: str):
    """Put a failed job back in line (jobs.retry); audit `job.retried`."""
    record = db.get_or_404(JobRecord, job_id)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("admin.failed_jobs"))
    try:
        jobs.retry(record)
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.failed_jobs"))
    audit.record(
        "job.retried",
        subject_type="JobRecord",
        subject_id=record.id,
        details={"func": record.func, "description": record.description},
    )
    db.session.commit()
    flash(f"Job “{record.description or record.func}” is queued again.", "success")
    return redirect(url_for("admin.failed_jobs"))
