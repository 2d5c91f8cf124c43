"""Customer contact pages: invoices awaiting a decision, history, an invoice, approve or deny."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal.core import audit
from portal.core.tenancy import get_or_404, scoped
from portal.customer import bp
from portal.extensions import db
from portal.invoicing import disputes, lifecycle, queries
from portal.models import Employee, Invoice, InvoiceStatus
from portal.models.base import utcnow
from portal.web import invoices as invoice_views
from portal.web import is_htmx
from portal.web.actions import saved
from portal.web.forms import EmptyForm
from portal.web.invoice_forms import ApproveForm, DenyForm, DisputeForm
from portal.web.pagination import paginate

HISTORY_PAGE = 50


@bp.route("/")
def index():
    """Invoices awaiting the contact's decision (oldest first), spend charts, and the decided history
    (newest first, HISTORY_PAGE at a time: ?page=2 ...)."""
    waiting = db.session.scalars(
        scoped(Invoice).where(Invoice.status == InvoiceStatus.PENDING_APPROVAL).order_by(Invoice.created_at)
    ).all()
    decided = scoped(Invoice).where(Invoice.status != InvoiceStatus.PENDING_APPROVAL)
    history = paginate(decided.order_by(Invoice.id.desc()), per_page=HISTORY_PAGE, clamp=True)
    employee_count = db.session.scalar(select(func.count()).select_from(scoped(Employee).subquery()))
    today = utcnow().date()
    customer_id = current_user.customer_id
    charts = [
        (
            title,
            queries.monthly_spend(customer_id, dimension, today=today, currency=currency)
            if currency
            else queries.no_spend(today),
        )
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
        history=history.items,
        history_page=history.page,
        history_pages=history.pages,
        history_total=history.total,
        employee_count=employee_count,
        now=utcnow(),
        charts=charts,
    )


LINES = {"page_endpoint": "customer.invoice", "endpoint": "customer.invoice_lines"}


def _decision_context(inv: Invoice, approve_form=None, deny_form=None) -> dict:
    return {
        # Not bound to this request's form: a dispute's "comment" is not the approval's comment.
        "approve_form": approve_form or ApproveForm(formdata=None),
        "deny_form": deny_form or DenyForm(formdata=None),
        "disputes": disputes.open_disputes(inv),
        "disputed_minor": invoice_views.disputed_minor(inv),
    }


def _render_page(inv: Invoice, *, status: int = 200, approve_form=None, deny_form=None, **lines_extra):
    """The invoice page; with a form's errors (status 4xx) shown next to their fields."""
    line_table, _ = invoice_views.line_table(inv, can_dispute=True, **LINES, **lines_extra)
    # A 4xx answer to a boosted POST keeps the page's URL (portal/web.py htmx_keep_url_on_error).
    return make_response(
        render_template(
            "customer/invoice.html",
            invoice=inv,
            totals=queries.totals(inv),
            **invoice_views.documents_context(inv),
            employee_endpoint="customer.employee_lines",
            line_table=line_table,
            **LINES,
            **_decision_context(inv, approve_form, deny_form),
        ),
        status,
    )


@bp.route("/invoices/<id:invoice_id>")
def invoice(invoice_id: int):
    """One of the customer's invoices: summary, breakdowns, decision, and the lines filtered, sorted
    and paged by the query string (q, partner, type, sort, page), as the line table's controls set them."""
    inv = get_or_404(Invoice, invoice_id)
    audit.record_view("invoice.viewed", subject=inv)
    db.session.commit()
    return _render_page(inv)


@bp.route("/invoices/<id:invoice_id>/lines")
def invoice_lines(invoice_id: int):
    """The #lines section alone for htmx (search, filters, sort, pages); the full page otherwise."""
    inv = get_or_404(Invoice, invoice_id)
    if not is_htmx():
        return redirect(url_for("customer.invoice", invoice_id=invoice_id, **request.args) + "#lines")
    return invoice_views.render_lines(inv, can_dispute=True, **LINES)


@bp.route("/invoices/<id:invoice_id>/employees/<id:employee_id>")
def employee_lines(invoice_id: int, employee_id: int):
    """One employee's lines on the invoice, loaded on demand into the breakdown."""
    return invoice_views.employee_lines(get_or_404(Invoice, invoice_id), employee_id)


@bp.route("/invoices/<id:invoice_id>/documents")
def documents_status(invoice_id: int):
    """The "Documents and delivery" section alone: the page polls it while the files are prepared."""
    inv = get_or_404(Invoice, invoice_id)
    return render_template("invoices/_documents.html", invoice=inv, **invoice_views.documents_context(inv))


@bp.route("/invoices/<id:invoice_id>/documents/<any(pdf, csv):kind>")
def document(invoice_id: int, kind: str):
    """Download the invoice's PDF or CSV (the stored bytes, the same every time)."""
    return invoice_views.download(get_or_404(Invoice, invoice_id), kind)


def _after_line_change(inv: Invoice, *, status: int = 200, message: str = "", **lines_extra):
    """What a dispute or a withdrawal answers: for htmx the line table (its view kept by the query
    string the form posted to) and, out of band, the decision and the summary, which change with
    the disputes; without JavaScript the same view of the full page (or, on an error, the page
    with the error next to the comment)."""
    if not is_htmx():
        if status >= 400:
            return _render_page(inv, status=status, **lines_extra)
        if message:
            flash(message, "success")
        view = invoice_views.requested_view_args()
        return redirect(invoice_views.page_url("customer.invoice", inv, view, anchor="lines"))
    lines = invoice_views.render_lines(inv, can_dispute=True, **LINES, **lines_extra)
    oob = render_template("customer/_decision.html", invoice=inv, oob=True, **_decision_context(inv))
    oob += render_template("invoices/_summary.html", invoice=inv, oob=True)
    lines.set_data(lines.get_data(as_text=True) + oob)
    lines.status_code = status
    return lines


def _form_error(form) -> str:
    if "csrf_token" in form.errors:
        return "This page was open too long to accept the form: reload it and try again."
    return " ".join(message for errors in form.errors.values() for message in errors)


@bp.route("/invoices/<id:invoice_id>/lines/<id:line_id>/dispute", methods=["POST"])
def line_dispute(invoice_id: int, line_id: int):
    """Flag a line as disputed with a comment (before deciding). A missing or too long comment, or
    an invoice decided meanwhile, answers 400/409 with the error next to the comment box."""
    inv = get_or_404(Invoice, invoice_id)
    form = DisputeForm()
    status, message = 400, ""
    if form.validate_on_submit():
        with saved(lifecycle.InvoiceStateError, flash_error=False) as outcome:
            disputes.flag_line(inv, line_id, by=current_user, comment=form.comment.data)
        if outcome.ok:
            return _after_line_change(inv, message="Line disputed: our team sees your comment.")
        status, message = 409, str(outcome.error)
    error = {"message": message or _form_error(form), "comment": form.comment.data or ""}
    return _after_line_change(inv, status=status, dispute_errors={line_id: error})


@bp.route("/invoices/<id:invoice_id>/lines/<id:line_id>/undispute", methods=["POST"])
def line_undispute(invoice_id: int, line_id: int):
    """Withdraw a line's dispute flag (already withdrawn: nothing to do, the page shows it so)."""
    inv = get_or_404(Invoice, invoice_id)
    dispute = disputes.open_disputes(inv).get(line_id)
    if dispute is not None and EmptyForm().validate_on_submit():
        with saved(lifecycle.InvoiceStateError, flash_error=False) as outcome:
            disputes.withdraw(dispute, by=current_user)
        if outcome.ok:
            return _after_line_change(inv, message="Dispute withdrawn.")
        error = {"message": str(outcome.error), "comment": ""}
        return _after_line_change(inv, status=409, dispute_errors={line_id: error})
    return _after_line_change(inv)


@bp.route("/invoices/<id:invoice_id>/approve-undisputed", methods=["POST"])
def approve_undisputed(invoice_id: int):
    """Approve the invoice without its disputed lines, which go to our team for review."""
    inv = get_or_404(Invoice, invoice_id)
    form = ApproveForm()
    if not form.validate_on_submit():
        return _render_page(inv, status=400, approve_form=form)
    with saved(lifecycle.InvoiceStateError) as outcome:
        held = disputes.approve_undisputed(inv, by=current_user, comment=form.comment.data)
        outcome.message = (
            f"You approved {inv.number} without {len(held)} disputed line(s); our team will review them."
        )
    return redirect(url_for("customer.invoice", invoice_id=invoice_id))


@bp.route("/invoices/<id:invoice_id>/approve", methods=["POST"])
def approve(invoice_id: int):
    """Approve an invoice awaiting decision; a second decision is refused and told who decided."""
    inv = get_or_404(Invoice, invoice_id)
    form = ApproveForm()
    if not form.validate_on_submit():
        return _render_page(inv, status=400, approve_form=form)
    with saved(lifecycle.InvoiceStateError) as outcome:  # refused while a line is flagged
        lifecycle.approve(inv, by=current_user, comment=form.comment.data)
        outcome.message = f"You approved {inv.kind_label.lower()} {inv.number}."
    return redirect(url_for("customer.invoice", invoice_id=invoice_id))


@bp.route("/invoices/<id:invoice_id>/deny", methods=["POST"])
def deny(invoice_id: int):
    """Deny an invoice with a reason; our team is told and issues a corrected revision. Without a
    reason (or without details for "Other") the page answers 400 with the error next to the field."""
    inv = get_or_404(Invoice, invoice_id)
    form = DenyForm()
    if not form.validate_on_submit():
        return _render_page(inv, status=400, deny_form=form)
    with saved(lifecycle.InvoiceStateError) as outcome:
        lifecycle.deny(inv, by=current_user, reason=form.full_reason())
        outcome.message = f"You denied {inv.number}. Our team will review it and send a corrected invoice."
        outcome.category = "info"
    return redirect(url_for("customer.invoice", invoice_id=invoice_id))
