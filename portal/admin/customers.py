"""Admin pages for customers and their employees: create and edit a customer, list, search, add and
edit employees, and import a roster CSV. The rules and audit events live in `portal.accounts`."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select
from sqlalchemy.orm import contains_eager

from portal import accounts
from portal.accounts.roster import RosterFileError, import_roster
from portal.admin import bp
from portal.admin.console_forms import CustomerForm, EmployeeForm, RosterForm, commit_edit, form_error
from portal.extensions import db
from portal.models import Customer, Employee
from portal.web.actions import saved
from portal.web.pagination import paginate

PAGE_SIZE = 50


@bp.route("/customers/new", methods=["GET", "POST"])
def customer_new():
    """Create a customer through accounts.create_customer; errors appear next to their field."""
    form = CustomerForm()
    if not form.is_submitted():
        form.timezone.data, form.invoice_day.data, form.invoicing_enabled.data = "UTC", 1, True
        form.payment_terms_days.data, form.locale.data = 30, "en_US"
    if form.validate_on_submit():
        with saved(accounts.ValidationError, flash_error=False) as outcome:
            customer = accounts.create_customer(
                code=form.code.data or "",
                name=form.name.data,
                kind=form.kind.data,
                timezone=form.timezone.data.strip(),
                invoice_day=form.invoice_day.data,
                billing_address=form.billing_address.data or "",
                payment_terms_days=30
                if form.payment_terms_days.data is None
                else form.payment_terms_days.data,
                locale=form.locale.data or "en_US",
            )
            customer.invoicing_enabled = bool(form.invoicing_enabled.data)
            outcome.message = f"Customer {customer.code} created."
        if outcome.ok:
            return redirect(url_for("admin.customer_edit", customer_id=customer.id))
        form_error(form, outcome.error)
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
            change = accounts.update_customer(
                customer,
                name=form.name.data,
                kind=form.kind.data,
                timezone=form.timezone.data,
                invoice_day=form.invoice_day.data,
                invoicing_enabled=form.invoicing_enabled.data,
                billing_address=form.billing_address.data,
                payment_terms_days=form.payment_terms_days.data,
                locale=form.locale.data or None,
            )
        except accounts.ValidationError as exc:
            form_error(form, exc)
        else:
            commit_edit(change, f"Customer {customer.code}")
            return redirect(url_for("admin.customer_edit", customer_id=customer.id))
    status = 400 if form.errors else 200
    return render_template("admin/console/customer_form.html", form=form, customer=customer), status


def _employees_page(customer: Customer, *, roster_form=None, result=None, file_error=None, status=200):
    q = request.args.get("q", "").strip()
    stmt = select(Employee).where(Employee.customer_id == customer.id)
    if q:
        pattern = f"%{q.lower()}%"
        stmt = stmt.where(
            or_(func.lower(Employee.name).like(pattern), func.lower(Employee.external_id).like(pattern))
        )
    page = paginate(stmt.order_by(Employee.name, Employee.id), per_page=PAGE_SIZE)
    return render_template(
        "admin/console/employees.html",
        customer=customer,
        employees=page.items,
        q=q,
        page=page.page,
        total=page.total,
        pages=page.pages,
        roster_form=roster_form or RosterForm(),
        result=result,
        file_error=file_error,
    ), status


@bp.route("/employees")
def all_employees():
    """Every customer's employees, searchable by name, employee ID or email, 50 a page."""
    q = request.args.get("q", "").strip()
    stmt = select(Employee).join(Employee.customer).options(contains_eager(Employee.customer))
    if q:
        pattern = f"%{q.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(Employee.name).like(pattern),
                func.lower(Employee.external_id).like(pattern),
                func.lower(Employee.email).like(pattern),
            )
        )
    page = paginate(stmt.order_by(Employee.name, Employee.id), per_page=PAGE_SIZE)
    customers = db.session.scalars(select(Customer).order_by(Customer.code)).all()
    return render_template(
        "admin/console/all_employees.html",
        employees=page.items,
        q=q,
        page=page.page,
        total=page.total,
        pages=page.pages,
        customers=customers,
    )


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
        fields = {"external_id": form.external_id.data, "name": form.name.data, "email": form.email.data}
        try:
            if employee is None:
                employee = accounts.create_employee(customer, **fields)
                db.session.commit()
                flash(f"Employee {employee.name} added.", "success")
            else:
                commit_edit(accounts.update_employee(employee, **fields), f"Employee {employee.name}")
        except accounts.ValidationError as exc:
            db.session.rollback()
            form_error(form, exc)
        else:
            return redirect(url_for("admin.employees", customer_id=customer.id))
    status = 400 if form.errors else 200
    return render_template(
        "admin/console/employee_form.html", form=form, customer=customer, employee=employee
    ), status
