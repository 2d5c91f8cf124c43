"""Admin pages: overview, every partner's uploads, and the quarantine of unknown employees."""

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal import accounts
from portal.admin import bp
from portal.admin.audit_query import event_subjects
from portal.admin.dashboard import overview_figures
from portal.core import audit
from portal.extensions import db
from portal.ingest.quarantine import quarantined_employees, release_quarantine
from portal.models import AuditEvent, Customer, Employee, Partner, User
from portal.web.forms import EmptyForm
from portal.web.inputs import parse_id


@bp.route("/")
def index():
    """The admin's overview: what needs attention, the figures and charts, the latest changes."""
    counts = {
        "partners": db.session.scalar(select(func.count(Partner.id))),
        "customers": db.session.scalar(select(func.count(Customer.id))),
        "users": db.session.scalar(select(func.count(User.id))),
        "quarantined": sum(q["rows"] for q in quarantined_employees()),
    }
    # What changed lately: page views and downloads stay in the audit log, not in this feed.
    events = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.not_in(audit.READ_ONLY_ACTIONS))
        .order_by(AuditEvent.seq.desc())
        .limit(20)
    ).all()
    return render_template(
        "admin/index.html",
        counts=counts,
        events=events,
        subjects=event_subjects(events),
        **overview_figures(),
    )


@bp.route("/quarantine")
def quarantine():
    """Rows held because their employee is unknown, grouped by customer and employee id."""
    held = quarantined_employees()
    customers = {
        c.id: c
        for c in db.session.scalars(select(Customer).where(Customer.id.in_({h["customer_id"] for h in held})))
    }
    employees = {}
    for customer_id in customers:
        employees[customer_id] = db.session.scalars(
            select(Employee).where(Employee.customer_id == customer_id).order_by(Employee.name)
        ).all()
    return render_template(
        "admin/quarantine.html", held=held, customers=customers, employees=employees, form=EmptyForm()
    )


@bp.route("/quarantine/release", methods=["POST"])
def quarantine_release():
    """Map held rows to an existing employee, or create the employee, then import the rows."""
    form = EmptyForm()
    if not form.validate_on_submit():
        return redirect(url_for("admin.quarantine"))
    customer = db.get_or_404(Customer, parse_id(request.form.get("customer_id")) or 0)
    external_id = (request.form.get("external_id") or "").strip() or None
    email = (request.form.get("email") or "").strip().lower() or None
    held = external_id or email
    choice = request.form.get("employee_id", "")
    try:
        if choice == "new":
            new_id = (request.form.get("new_external_id") or external_id or "").strip()
            if not new_id:
                raise accounts.ValidationError(
                    "employee ID", "a new employee needs the customer's employee ID; type it in"
                )
            employee = accounts.create_employee(
                customer,
                external_id=new_id,
                name=request.form.get("name"),
                email=email,
                reason="quarantine release",
            )
        else:
            employee = db.session.scalar(
                select(Employee).where(Employee.id == parse_id(choice), Employee.customer_id == customer.id)
            )
            if employee is None:
                raise accounts.ValidationError(
                    "employee", "choose an employee of this customer, or create one"
                )
        count = release_quarantine(
            customer,
            external_id,
            employee,
            user=current_user,
            email=email,
            add_email=bool(request.form.get("add_email")),
        )
        db.session.commit()
    except accounts.ValidationError as exc:
        db.session.rollback()
        flash(f"{exc.field}: {exc.message}", "error")
        return redirect(url_for("admin.quarantine"))
    flash(f"Released {count} row(s) of {held} ({customer.code}) as {employee.name}.", "success")
    return redirect(url_for("admin.quarantine"))
