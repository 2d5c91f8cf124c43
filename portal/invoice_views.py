"""Invoice page pieces shared by the customer and admin blueprints: the filtered line table,
the per-employee lines, and document downloads. Each takes an invoice already checked by the caller."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import select

from portal import audit
from portal.extensions import db
from portal.invoicing import queries
from portal.invoicing.disputes import open_disputes
from portal.models import Invoice, InvoiceDocument, InvoiceStatus, Partner
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


def employee_lines(invoice: Invoice, employee_id: int):
    rows = queries.invoice_lines(invoice, limit=1000, employee_id=employee_id)
    return render_template("invoices/_employee_lines.html", invoice=invoice, lines=rows)


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
