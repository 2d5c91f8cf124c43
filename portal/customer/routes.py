"""Customer contact pages: invoices awaiting a decision, history, an invoice, approve or deny."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal import audit, invoice_views
from portal.auth.forms import EmptyForm
from portal.customer import bp
from portal.extensions import db
from portal.invoice_forms import ApproveForm, DenyForm
from portal.invoicing import disputes, lifecycle, queries
from portal.models import Employee, Invoice, InvoiceStatus
from portal.models.base import utcnow
from portal.tenancy import get_or_404, scoped

HISTORY_PAGE = 50


@bp.route("/")
def index():
    """Invoices awaiting the contact's decision (oldest first), spend charts, and the decided history
    (newest first, HISTORY_PAGE at a time: ?page=2 ...)."""
    waiting = db.session.scalars(
        scoped(Invoice).where(Invoice.status == InvoiceStatus.PENDING_APPROVAL).order_by(Invoice.created_at)
    ).all()
    decided = scoped(Invoice).where(Invoice.status != InvoiceStatus.PENDING_APPROVAL)
    history_total = db.session.scalar(select(func.count()).select_from(decided.subquery()))
    pages = max((history_total + HISTORY_PAGE - 1) // HISTORY_PAGE, 1)
    page = min(max(request.args.get("page", 1, type=int), 1), pages)
    history = db.session.scalars(
        decided.order_by(Invoice.id.desc()).limit(HISTORY_PAGE).offset((page - 1) * HISTORY_PAGE)
    ).all()
    employee_count = db.session.scalar(select(func.count()).select_from(scoped(Employee).subquery()))
    today = utcnow().date()
    customer_id = current_user.customer_id
    charts = [
        (title, queries.monthly_spend(customer_id, dimension, today=today, currency=currency))
        for currency in queries.billed_currencies(customer_id) or [None]
        for title, dimension in (
            ("Monthly spend by partner", "partner"),
            ("Monthly spend by expense type", "expense_type"),
        )
    ]
    return render_template(
        "customer/index.html",
        customer=current_user.customer,
        waiting=waiting,
        history=history,
        history_page=page,
        history_pages=pages,
        history_total=history_total,
        employee_count=employee_count,
        now=utcnow(),
        charts=charts,
    )


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@bp.route("/invoices/<int:invoice_id>")
def invoice(invoice_id: int):
    """One of the customer's invoices: summary, breakdowns, lines with search and disputes, decision."""
    inv = get_or_404(Invoice, invoice_id)
    audit.record("invoice.viewed", subject=inv)
    db.session.commit()
    return render_template(
        "customer/invoice.html",
        invoice=inv,
        totals=queries.totals(inv),
        approve_form=ApproveForm(),
        deny_form=DenyForm(),
        **invoice_views.documents_context(inv),
        endpoint="customer.invoice_lines",
        lines_endpoint="customer.invoice_lines",
        employee_endpoint="customer.employee_lines",
        **invoice_views.lines_context(inv, can_dispute=True),
    )


@bp.route("/invoices/<int:invoice_id>/lines")
def invoice_lines(invoice_id: int):
    """The line table alone for htmx (search, filters, sort, pages); a full page otherwise."""
    inv = get_or_404(Invoice, invoice_id)
    if not _is_htmx():
        return redirect(url_for("customer.invoice", invoice_id=invoice_id, **request.args) + "#lines")
    return invoice_views.render_lines(inv, can_dispute=True, endpoint="customer.invoice_lines")


@bp.route("/invoices/<int:invoice_id>/employees/<int:employee_id>")
def employee_lines(invoice_id: int, employee_id: int):
    """One employee's lines on the invoice, loaded on demand into the breakdown."""
    return invoice_views.employee_lines(get_or_404(Invoice, invoice_id), employee_id)


@bp.route("/invoices/<int:invoice_id>/documents")
def documents_status(invoice_id: int):
    """The "Documents and delivery" section alone: the page polls it while the files are prepared."""
    inv = get_or_404(Invoice, invoice_id)
    return render_template("invoices/_documents.html", invoice=inv, **invoice_views.documents_context(inv))


@bp.route("/invoices/<int:invoice_id>/documents/<any(pdf, csv):kind>")
def document(invoice_id: int, kind: str):
    """Download the invoice's PDF or CSV (the stored bytes, the same every time)."""
    return invoice_views.download(get_or_404(Invoice, invoice_id), kind)


def _after_line_change(inv: Invoice):
    if _is_htmx():
        return invoice_views.render_lines(inv, can_dispute=True, endpoint="customer.invoice_lines")
    return redirect(url_for("customer.invoice", invoice_id=inv.id) + "#lines")


@bp.route("/invoices/<int:invoice_id>/lines/<int:line_id>/dispute", methods=["POST"])
def line_dispute(invoice_id: int, line_id: int):
    """Flag a line as disputed with a comment (before deciding)."""
    inv = get_or_404(Invoice, invoice_id)
    if EmptyForm().validate_on_submit():
        try:
            disputes.flag_line(inv, line_id, by=current_user, comment=request.form.get("comment", ""))
            db.session.commit()
        except lifecycle.InvoiceStateError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            if _is_htmx():
                response = make_response(
                    invoice_views.render_lines(inv, can_dispute=True, endpoint="customer.invoice_lines")
                )
                response.headers["HX-Trigger"] = "dispute-error"
                return response
    return _after_line_change(inv)


@bp.route("/invoices/<int:invoice_id>/lines/<int:line_id>/undispute", methods=["POST"])
def line_undispute(invoice_id: int, line_id: int):
    """Withdraw a line's dispute flag."""
    inv = get_or_404(Invoice, invoice_id)
    dispute = disputes.open_disputes(inv).get(line_id)
    if dispute is not None and EmptyForm().validate_on_submit():
        try:
            disputes.withdraw(dispute, by=current_user)
            db.session.commit()
        except lifecycle.InvoiceStateError as exc:
            db.session.rollback()
            flash(str(exc), "error")
    return _after_line_change(inv)


@bp.route("/invoices/<int:invoice_id>/approve-undisputed", methods=["POST"])
def approve_undisputed(invoice_id: int):
    """Approve the invoice without its disputed lines, which go to our team for review."""
    inv = get_or_404(Invoice, invoice_id)
    form = ApproveForm()
    if form.validate_on_submit():
        try:
            held = disputes.approve_undisputed(inv, by=current_user, comment=form.comment.data)
            db.session.commit()
            flash(
                f"You approved {inv.number} without {len(held)} disputed line(s); our team will review them.",
                "success",
            )
        except lifecycle.InvoiceStateError as exc:
            db.session.rollback()
            flash(str(exc), "error")
    return redirect(url_for("customer.invoice", invoice_id=invoice_id))


@bp.route("/invoices/<int:invoice_id>/approve", methods=["POST"])
def approve(invoice_id: int):
    """Approve an invoice awaiting decision; a second decision is refused and told who decided."""
    inv = get_or_404(Invoice, invoice_id)
    form = ApproveForm()
    if form.validate_on_submit():
        try:  # refused while a line is flagged (checked under the invoice's lock)
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
