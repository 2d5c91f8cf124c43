"""Admin invoice pages: the list with filters, "generate now", an invoice's detail, void, resolve a denial.

Where invoices go after approval (channels, deliveries, redelivery) is in `delivery.py`.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal import jobs
from portal.admin import bp
from portal.extensions import db
from portal.invoicing import disputes, lifecycle, queries
from portal.invoicing.build import build_due, run_period
from portal.invoicing.periods import Period
from portal.models import (
    Customer,
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceRun,
    InvoiceStatus,
    JobRecord,
    JobStatus,
    LineItem,
)
from portal.models.base import utcnow
from portal.web import invoices as invoice_views
from portal.web.actions import saved
from portal.web.forms import EmptyForm
from portal.web.inputs import InputError, page_arg, parse_id, parse_period
from portal.web.invoice_forms import GenerateForm, ReasonForm
from portal.web.pagination import paginate

PAGE_SIZE = 50
RESOLVE_LIMIT = 2000


def _generate_form() -> GenerateForm:
    form = GenerateForm()
    form.customer.choices = [
        (c.code, f"{c.code} · {c.name}") for c in db.session.scalars(select(Customer).order_by(Customer.code))
    ]
    if not form.is_submitted():
        form.period.data = Period.of(utcnow().date()).previous.key
    return form


@bp.route("/invoices")
def invoices():
    """Every invoice, newest first, filtered by status, customer and period; plus the latest runs."""
    return _render_invoices(_generate_form())


def _render_invoices(form: GenerateForm):
    page_arg()  # a page number we do not accept answers 400 before any other message is queued
    stmt = select(Invoice).join(Customer).order_by(Invoice.id.desc())
    status = request.args.get("status", "")
    if status in {s.value for s in InvoiceStatus}:
        stmt = stmt.where(Invoice.status == InvoiceStatus(status))
    code = request.args.get("customer", "").strip().upper()
    if code:
        stmt = stmt.where(Customer.code == code)
    period = request.args.get("period", "").strip()
    if period:
        try:
            stmt = stmt.where(Invoice.period_start == parse_period(period).start)
        except InputError as exc:
            flash(exc.description, "error")
    listed = paginate(stmt, per_page=PAGE_SIZE)
    return render_template(
        "admin/invoices.html",
        invoices=listed.items,
        **_runs_context(),
        page=listed.page,
        pages=listed.pages,
        total=listed.total,
        statuses=list(InvoiceStatus),
        filters={"status": status, "customer": code, "period": period},
        form=form,
    )


# "Generate now" jobs and the hourly run's chunk jobs, which the runs section follows alike.
RUN_JOBS = [f"{f.__module__}.{f.__qualname__}" for f in (run_period, build_due)]


def _runs_context() -> dict:
    """The latest invoice runs, and the "generate now" jobs not done yet (queued, running, retrying,
    or failed in the last day), which the runs section follows until they finish."""
    runs = db.session.execute(
        select(InvoiceRun, Customer.code).join(Customer).order_by(InvoiceRun.ran_at.desc()).limit(10)
    ).all()
    open_jobs = db.session.scalars(
        select(JobRecord)
        .where(
            JobRecord.func.in_(RUN_JOBS),
            JobRecord.status != JobStatus.DONE,
            JobRecord.created_at >= utcnow() - timedelta(days=1),
        )
        .order_by(JobRecord.created_at.desc())
        .limit(20)
    ).all()
    return {"runs": runs, "open_jobs": open_jobs, "watching": [j.id for j in open_jobs if not j.finished]}


@bp.route("/invoices/runs")
def invoice_runs():
    """The runs section alone, polled while a run is queued or running. When a run it was watching
    (?watching=id,id) has finished, it tells the page (HX-Trigger: invoices-changed), whose invoice
    list then refreshes itself."""
    context = _runs_context()
    response = make_response(render_template("admin/_runs.html", **context))
    was_watching = {i for i in request.args.get("watching", "").split(",") if i}
    if was_watching - set(context["watching"]):
        response.headers["HX-Trigger"] = "invoices-changed"
    return response


@bp.route("/invoices/generate", methods=["POST"])
def invoices_generate():
    """Queue a customer's invoice run for a period now (creates only what is missing)."""
    form = _generate_form()
    if not form.validate_on_submit():  # the errors are shown next to their fields
        return _render_invoices(form), 400
    try:
        parse_period(form.period.data)
    except InputError as exc:
        form.period.errors = [*form.period.errors, exc.description]
        return _render_invoices(form), 400
    customer = db.session.scalar(select(Customer).where(Customer.code == form.customer.data))
    if customer is None:
        abort(404)
    jobs.enqueue(
        run_period,
        customer.id,
        form.period.data,
        current_user.id,
        True,
        queue="invoices",
        description=f"Invoice {customer.code} {form.period.data} (by {current_user.email})",
    )
    db.session.commit()
    flash(
        f"Invoice run for {customer.code} {form.period.data} queued; this page shows its result and the "
        "new invoices as soon as it has run.",
        "success",
    )
    return redirect(url_for("admin.invoices"))


LINES = {"page_endpoint": "admin.invoice", "endpoint": "admin.invoice_lines"}


@bp.route("/invoices/<id:invoice_id>")
def invoice(invoice_id: int):
    """One invoice (any revision): summary, totals, its lines (filtered, sorted and paged by the
    query string, as the line table's controls set them), and the actions its status allows."""
    return _render_invoice(db.get_or_404(Invoice, invoice_id), ReasonForm())


def _render_invoice(inv: Invoice, void_form: ReasonForm):
    can_resolve = inv.status == InvoiceStatus.DENIED and inv.resolved_at is None
    if can_resolve:  # the resolution form lists every line at once
        context = {"lines": queries.invoice_lines(inv, limit=RESOLVE_LIMIT)}
    else:
        context = {"line_table": invoice_views.line_table(inv, can_dispute=False, **LINES)[0]}
    return render_template(
        "admin/invoice.html",
        invoice=inv,
        totals=queries.totals(inv),
        revisions=queries.revisions(inv),
        void_form=void_form,
        form=EmptyForm(),
        can_resolve=can_resolve,
        **invoice_views.documents_context(inv),
        employee_endpoint="admin.employee_lines",
        **LINES,
        **context,
    )


@bp.route("/invoices/<id:invoice_id>/lines")
def invoice_lines(invoice_id: int):
    """The line table alone for htmx; a full page otherwise."""
    inv = db.get_or_404(Invoice, invoice_id)
    if request.headers.get("HX-Request") != "true":
        return redirect(url_for("admin.invoice", invoice_id=invoice_id, **request.args) + "#lines")
    return invoice_views.render_lines(inv, can_dispute=False, **LINES)


@bp.route("/invoices/<id:invoice_id>/employees/<id:employee_id>")
def employee_lines(invoice_id: int, employee_id: int):
    return invoice_views.employee_lines(db.get_or_404(Invoice, invoice_id), employee_id)


@bp.route("/invoices/<id:invoice_id>/documents")
def documents_status(invoice_id: int):
    """The "Documents and delivery" section alone, polled while the files are prepared."""
    inv = db.get_or_404(Invoice, invoice_id)
    return render_template("invoices/_documents.html", invoice=inv, **invoice_views.documents_context(inv))


@bp.route("/invoices/<id:invoice_id>/documents/<any(pdf, csv):kind>")
def document(invoice_id: int, kind: str):
    """Download the invoice's PDF or CSV."""
    return invoice_views.download(db.get_or_404(Invoice, invoice_id), kind)


@bp.route("/disputes")
def disputes_queue(errors: dict[int, str] | None = None):
    """Open line disputes, oldest first, each with the line and the invoice it was flagged on."""
    rows = db.session.execute(
        select(Dispute, LineItem, Invoice)
        .join(LineItem, LineItem.id == Dispute.line_item_id)
        .join(Invoice, Invoice.id == Dispute.invoice_id)
        .where(Dispute.status == DisputeStatus.OPEN)
        .order_by(Dispute.created_at)
    ).all()
    return render_template("admin/disputes.html", rows=rows, form=EmptyForm(), errors=errors or {})


@bp.route("/disputes/<id:dispute_id>/resolve", methods=["POST"])
def dispute_resolve(dispute_id: int):
    """Re-bill a disputed line on a supplemental invoice, or reject it back to the partner."""
    dispute = db.get_or_404(Dispute, dispute_id)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("admin.disputes_queue"))
    action = request.form.get("action")
    reason = request.form.get("reason", "")
    try:
        if action == "rebill":
            supplemental = disputes.rebill([dispute], by=current_user, reason=reason)
            message = f"Re-billed on {supplemental.number}, which awaits the customer's approval."
        elif action == "reject":
            if not reason.strip():  # shown next to the reason field of this dispute
                return disputes_queue(
                    {dispute.id: "A reason is required to reject a line back to the partner."}
                ), 400
            disputes.reject(dispute, by=current_user, reason=reason)
            message = "Line rejected back to the partner."
        else:
            raise lifecycle.InvoiceStateError("Choose re-bill or reject.")
        db.session.commit()
        flash(message, "success")
    except lifecycle.InvoiceStateError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("admin.disputes_queue"))


@bp.route("/invoices/<id:invoice_id>/void", methods=["POST"])
def invoice_void(invoice_id: int):
    """Void an invoice with a reason (its lines return to unbilled)."""
    inv = db.get_or_404(Invoice, invoice_id)
    form = ReasonForm()
    if not form.validate_on_submit():  # the error is shown next to the reason field
        response = make_response(_render_invoice(inv, form), 400)
        # Answered in place of a boosted POST: the address bar keeps the page's URL, not the POST's.
        response.headers["HX-Replace-Url"] = url_for("admin.invoice", invoice_id=invoice_id)
        return response
    with saved(lifecycle.InvoiceStateError) as outcome:
        lifecycle.void(inv, by=current_user, reason=form.reason.data)
        outcome.message = f"Invoice {inv.number} is void; its lines are unbilled again."
    return redirect(url_for("admin.invoice", invoice_id=invoice_id))


@bp.route("/invoices/<id:invoice_id>/resolve", methods=["POST"])
def invoice_resolve(invoice_id: int):
    """Resolve a denial: for each line keep, unbill or reject (with a reason); issue the next revision."""
    inv = db.get_or_404(Invoice, invoice_id)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("admin.invoice", invoice_id=invoice_id))
    unbill, reject = {}, {}
    for key, choice in request.form.items():
        if not key.startswith("line-") or choice == "keep":
            continue
        line_id = parse_id(key.removeprefix("line-"))
        if line_id is None:
            raise InputError(f"“{key}” does not name a line of this invoice.")
        reason = request.form.get(f"reason-{line_id}", "")
        if choice == "unbill":
            unbill[line_id] = reason
        elif choice == "reject":
            reject[line_id] = reason
    try:
        revision = lifecycle.resolve_denial(inv, by=current_user, unbill=unbill, reject=reject)
        db.session.commit()
    except lifecycle.InvoiceStateError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.invoice", invoice_id=invoice_id))
    if revision is None:
        flash(f"Denial of {inv.number} resolved; no lines are left to bill.", "success")
        return redirect(url_for("admin.invoice", invoice_id=invoice_id))
    flash(f"Denial resolved: revision {revision.number} awaits the customer's approval.", "success")
    return redirect(url_for("admin.invoice", invoice_id=revision.id))
