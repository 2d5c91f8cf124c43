"""Customer contact pages: invoices awaiting a decision, history, an invoice, approve or deny."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal.customer import bp
from portal.extensions import db
from portal.invoice_forms import ApproveForm, DenyForm
from portal.invoicing import lifecycle, queries
from portal.models import Employee, Invoice, InvoiceStatus
from portal.tenancy import get_or_404, scoped

LINES_PAGE = 100


@bp.route("/")
def index():
    """Invoices awaiting the contact's decision (oldest first) and the decided history."""
    waiting = db.session.scalars(
        scoped(Invoice).where(Invoice.status == InvoiceStatus.PENDING_APPROVAL).order_by(Invoice.created_at)
    ).all()
    history = db.session.scalars(
        scoped(Invoice)
        .where(Invoice.status != InvoiceStatus.PENDING_APPROVAL)
        .order_by(Invoice.id.desc())
        .limit(50)
    ).all()
    employee_count = db.session.scalar(select(func.count()).select_from(scoped(Employee).subquery()))
    return render_template(
        "customer/index.html",
        customer=current_user.customer,
        waiting=waiting,
        history=history,
        employee_count=employee_count,
    )


@bp.route("/invoices/<int:invoice_id>")
def invoice(invoice_id: int):
    """One of the customer's invoices: summary, totals, its lines, and the decision forms."""
    inv = get_or_404(Invoice, invoice_id)
    page = max(request.args.get("page", 1, type=int), 1)
    count = queries.line_count(inv)
    return render_template(
        "customer/invoice.html",
        invoice=inv,
        totals=queries.totals(inv),
        lines=queries.invoice_lines(inv, limit=LINES_PAGE, offset=(page - 1) * LINES_PAGE),
        page=page,
        pages=max((count + LINES_PAGE - 1) // LINES_PAGE, 1),
        approve_form=ApproveForm(),
        deny_form=DenyForm(),
    )


@bp.route("/invoices/<int:invoice_id>/approve", methods=["POST"])
def approve(invoice_id: int):
    """Approve an invoice awaiting decision; a second decision is refused and told who decided."""
    inv = get_or_404(Invoice, invoice_id)
    form = ApproveForm()
    if form.validate_on_submit():
        try:
            lifecycle.approve(inv, by=current_user, comment=form.comment.data)
            db.session.commit()
            flash(f"You approved {inv.kind_label.lower()} {inv.number}.", "success")
        except lifecycle.InvoiceStateError as exc:
            db.session.rollback()
            flash(str(exc), "error")
    return redirect(url_for("customer.invoice", invoice_id=invoice_id))


@bp.route("/invoices/<int:invoice_id>/deny", methods=["POST"])
def deny(invoice_id: int):
    """Deny an invoice with a reason; our team is told and issues a corrected revision."""
    inv = get_or_404(Invoice, invoice_id)
    form = DenyForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return redirect(url_for("customer.invoice", invoice_id=invoice_id))
    try:
        lifecycle.deny(inv, by=current_user, reason=form.full_reason())
        db.session.commit()
        flash(f"You denied {inv.number}. Our team will review it and send a corrected invoice.", "info")
    except lifecycle.InvoiceStateError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("customer.invoice", invoice_id=invoice_id))
