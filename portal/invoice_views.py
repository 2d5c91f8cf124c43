"""Invoice page pieces shared by the customer and admin blueprints: the filtered line table,
the per-employee lines, and document downloads. Each takes an invoice already checked by the caller."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import select

from portal import audit, jobs
from portal.extensions import db
from portal.invoicing import queries
from portal.invoicing.disputes import open_disputes
from portal.models import Invoice, InvoiceDocument, InvoiceStatus, JobRecord, JobStatus, Partner
from portal.web import send_stored

LINES_PAGE = 100


def line_filters() -> dict:
    """The line table's filters from the query string (search, partner, expense type, sort)."""
    return {
        "q": request.args.get("q", "").strip()[:100],
        "partner_id": request.args.get("partner", type=int),
        "expense_type": request.args.get("type", "").strip()[:16],
    }


def lines_context(invoice: Invoice, *, can_dispute: bool) -> dict:
    filters = line_filters()
    sort = request.args.get("sort", "employee")
    page = max(request.args.get("page", 1, type=int), 1)
    total = queries.count_lines(invoice, **filters)
    return {
        "lines": queries.invoice_lines(
            invoice, limit=LINES_PAGE, offset=(page - 1) * LINES_PAGE, sort=sort, **filters
        ),
        "line_total": total,
        "page": page,
        "pages": max((total + LINES_PAGE - 1) // LINES_PAGE, 1),
        "sort": sort,
        "filters": filters,
        "partners": db.session.scalars(
            select(Partner).where(Partner.id.in_([int(t.key) for t in queries.totals(invoice)["partner"]]))
        ).all(),
        "expense_types": [t.key for t in queries.totals(invoice)["expense_type"]],
        "disputes": open_disputes(invoice),
        "can_dispute": can_dispute and invoice.status == InvoiceStatus.PENDING_APPROVAL,
    }


def render_lines(invoice: Invoice, *, can_dispute: bool, endpoint: str):
    return render_template(
        "invoices/_line_table.html",
        invoice=invoice,
        endpoint=endpoint,
        **lines_context(invoice, can_dispute=can_dispute),
    )


EMPLOYEE_LINES_SHOWN = 1000


def employee_lines(invoice: Invoice, employee_id: int):
    """One employee's lines for the breakdown; beyond EMPLOYEE_LINES_SHOWN it says how many more."""
    rows = queries.invoice_lines(invoice, limit=EMPLOYEE_LINES_SHOWN, employee_id=employee_id)
    total = (
        queries.count_lines(invoice, employee_id=employee_id)
        if len(rows) == EMPLOYEE_LINES_SHOWN
        else len(rows)
    )
    return render_template("invoices/_employee_lines.html", invoice=invoice, lines=rows, total=total)


RENDER_PHASES = {
    "csv": "writing the CSV",
    "pdf": "laying out the PDF",
    "store": "storing the files",
    "done": "finishing",
}


def render_state(invoice: Invoice, documents: dict[str, InvoiceDocument]) -> dict:
    """Where the approved invoice's PDF and CSV are: ready, being prepared (and which step), or failed.

    From the render job recorded with the approval; its failure is shown, so the page stops waiting.
    """
    if documents or invoice.status not in (InvoiceStatus.APPROVED, InvoiceStatus.DELIVERED):
        return {"state": "ready" if documents else "none"}
    record = db.session.get(JobRecord, invoice.render_job_id) if invoice.render_job_id else None
    if record is not None and record.status == JobStatus.FAILED:
        return {"state": "failed", "error": record.error or "", "job_id": record.id}
    phase = jobs.get_progress(record.id).get("phase") if record is not None else None
    return {
        "state": "preparing",
        "step": RENDER_PHASES.get(phase, "waiting for a worker"),
        "retrying": record is not None and record.status == JobStatus.RETRYING,
    }


def documents_context(invoice: Invoice) -> dict:
    """What the "Documents and delivery" section shows: files, render progress, deliveries."""
    from portal.delivery import delivery_summary

    found = documents(invoice)
    return {
        "documents": found,
        "render": render_state(invoice, found),
        "deliveries": delivery_summary(invoice),
    }


def documents(invoice: Invoice) -> dict[str, InvoiceDocument]:
    return {
        d.kind: d
        for d in db.session.scalars(select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice.id))
    }


def download(invoice: Invoice, kind: str):
    """Stream a stored deliverable; the same bytes every time (sha256 in the response header)."""
    from flask import abort

    doc = documents(invoice).get(kind)
    if doc is None:
        abort(404)
    audit.record("invoice.downloaded", subject=invoice, details={"kind": kind, "sha256": doc.sha256})
    db.session.commit()
    mimetype = "application/pdf" if kind == "pdf" else "text/csv"
    return send_stored(
        doc.storage_key,
        filename=f"{invoice.number}.{kind}",
        mimetype=mimetype,
        size=doc.size_bytes,
        sha256=doc.sha256,
    )
