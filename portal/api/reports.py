"""Invoices ("reports") over the API: list, one, lines, download, approve, deny, dispute a line.

Who may do what is what the pages allow: an admin reads every invoice (portal/admin/invoices.py), a
contact reads and decides its customer's (portal/customer/routes.py), a partner has no invoice pages.
Each action calls the domain function the page calls, which writes the same audit event; a decision
the invoice's state refuses (approving an approved invoice) is a 409 problem.
"""

from __future__ import annotations

from functools import wraps

import marshmallow as ma
from flask import url_for
from flask_login import current_user
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.api.auth import roles_required
from portal.api.idempotency import idempotent
from portal.api.pagination import PageArgs, page_schema, paginate
from portal.api.problems import abort_problem
from portal.core import audit
from portal.core.money import to_decimal
from portal.core.tenancy import scoped
from portal.extensions import db
from portal.invoicing import disputes, lifecycle, queries
from portal.models import Customer, Invoice, InvoiceDocument, InvoiceStatus, LineItem
from portal.web import invoices as invoice_views
from portal.web.inputs import InputError, parse_period

blp = Blueprint(
    "api_reports", __name__, description="Invoices (reports): read, download, approve, deny, dispute."
)

READERS = ("admin", "customer")
DECIDERS = ("customer",)  # only the customer's contacts decide (the admin voids or resolves instead)
TEXT_MAX = 2000  # as the page's forms (portal/web/invoice_forms.py)


def _money(amount_minor: int, currency: str) -> str:
    return str(to_decimal(amount_minor, currency))


class TotalSchema(ma.Schema):
    key = ma.fields.String(required=True, metadata={"description": "Employee or partner id, or the type."})
    label = ma.fields.String(required=True)
    amount = ma.fields.String(required=True, metadata={"description": "Decimal, in the invoice's currency."})
    amount_minor = ma.fields.Integer(required=True)
    line_count = ma.fields.Integer(required=True)


class DocumentLinksSchema(ma.Schema):
    pdf = ma.fields.String(allow_none=True, required=True)
    csv = ma.fields.String(allow_none=True, required=True)


class ReportSchema(ma.Schema):
    number = ma.fields.String(required=True, metadata={"example": "ACME-2026-01-1"})
    url = ma.fields.String(required=True)
    customer = ma.fields.String(required=True, metadata={"description": "The customer's code."})
    status = ma.fields.String(required=True, metadata={"enum": [s.value for s in InvoiceStatus]})
    kind = ma.fields.String(required=True, metadata={"enum": ["invoice", "credit_note", "supplemental"]})
    period = ma.fields.String(required=True, metadata={"example": "2026-01"})
    period_start = ma.fields.Date(required=True)
    period_end = ma.fields.Date(required=True)
    currency = ma.fields.String(required=True)
    revision = ma.fields.Integer(required=True)
    supplement = ma.fields.Integer(required=True)
    total = ma.fields.String(required=True, metadata={"description": "Decimal text, e.g. 1234.50."})
    total_minor = ma.fields.Integer(required=True)
    line_count = ma.fields.Integer(required=True)
    employee_count = ma.fields.Integer(required=True)
    partner_count = ma.fields.Integer(required=True)
    created_at = ma.fields.DateTime(required=True)
    decided_at = ma.fields.DateTime(allow_none=True, required=True)
    decided_by = ma.fields.String(allow_none=True, required=True, metadata={"description": "Email."})
    decision_comment = ma.fields.String(allow_none=True, required=True)
    deny_reason = ma.fields.String(allow_none=True, required=True)
    due_on = ma.fields.Date(allow_none=True, required=True)
    documents = ma.fields.Nested(DocumentLinksSchema, required=True)


class DisputeSchema(ma.Schema):
    line_id = ma.fields.Integer(required=True)
    comment = ma.fields.String(required=True)
    raised_at = ma.fields.DateTime(required=True)


class BreakdownSchema(ma.Schema):
    employee = ma.fields.List(ma.fields.Nested(TotalSchema), required=True)
    partner = ma.fields.List(ma.fields.Nested(TotalSchema), required=True)
    expense_type = ma.fields.List(ma.fields.Nested(TotalSchema), required=True)


class ReportDetailSchema(ReportSchema):
    totals = ma.fields.Nested(
        BreakdownSchema, required=True, metadata={"description": "Stored subtotals, largest first."}
    )
    open_disputes = ma.fields.List(ma.fields.Nested(DisputeSchema), required=True)


ReportPageSchema = page_schema(ReportSchema, "ReportPageSchema")


class ReportListArgs(PageArgs):
    status = ma.fields.String(validate=ma.validate.OneOf([s.value for s in InvoiceStatus]))
    period = ma.fields.String(
        validate=ma.validate.Length(max=7), metadata={"description": "Billing month, YYYY-MM."}
    )
    customer = ma.fields.String(
        validate=ma.validate.Length(max=64), metadata={"description": "Customer code (admin)."}
    )
    currency = ma.fields.String(validate=ma.validate.Length(equal=3))


class EmployeeSchema(ma.Schema):
    external_id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class LineSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    employee = ma.fields.Nested(EmployeeSchema, required=True)
    partner = ma.fields.String(required=True, metadata={"description": "The partner's slug."})
    partner_reference = ma.fields.String(required=True)
    expense_type = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    term = ma.fields.String(allow_none=True, required=True)
    service_date = ma.fields.Date(required=True)
    amount = ma.fields.String(required=True)
    amount_minor = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    is_adjustment = ma.fields.Boolean(required=True)
    disputed = ma.fields.Boolean(required=True, metadata={"description": "Flagged by the contact (open)."})


LinePageSchema = page_schema(LineSchema, "LinePageSchema")


class LineListArgs(PageArgs):
    q = ma.fields.String(
        validate=ma.validate.Length(max=100),
        metadata={"description": "Search employee name or ID and the description."},
    )
    expense_type = ma.fields.String(validate=ma.validate.Length(max=16))


class DownloadArgs(ma.Schema):
    format = ma.fields.String(load_default="pdf", validate=ma.validate.OneOf(["pdf", "csv"]))


def _not_blank(message: str):
    def check(value: str) -> None:
        if not value.strip():
            raise ma.ValidationError(message)

    return check


class ApproveSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    comment = ma.fields.String(validate=ma.validate.Length(max=TEXT_MAX), load_default=None)


class DenySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    reason = ma.fields.String(
        required=True,
        validate=[
            ma.validate.Length(max=TEXT_MAX),
            _not_blank("A reason is required to deny an invoice."),
        ],
        metadata={"example": "Line billed twice: T-17 and T-18 are the same session"},
    )


class DisputeArgsSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    comment = ma.fields.String(
        required=True,
        validate=[
            ma.validate.Length(max=1000),
            _not_blank("Say what is wrong with the line: a comment is required to dispute it."),
        ],
    )


# --- serialization ---------------------------------------------------------------------------------


def _report(inv: Invoice, docs: set[str] | None = None) -> dict:
    """The invoice's fields; `docs` (the kinds of its stored documents) when the caller has them."""
    docs = set(invoice_views.documents(inv)) if docs is None else docs
    kind = "credit_note" if inv.is_credit_note else ("supplemental" if inv.supplement else "invoice")
    return {
        "number": inv.number,
        "url": url_for("api_reports.report", number=inv.number, _external=False),
        "customer": inv.customer.code,
        "status": inv.status.value,
        "kind": kind,
        "period": f"{inv.period_start:%Y-%m}",
        "period_start": inv.period_start,
        "period_end": inv.period_end,
        "currency": inv.currency,
        "revision": inv.revision,
        "supplement": inv.supplement,
        "total": _money(inv.total_minor, inv.currency),
        "total_minor": inv.total_minor,
        "line_count": inv.line_count,
        "employee_count": inv.employee_count,
        "partner_count": inv.partner_count,
        "created_at": inv.created_at,
        "decided_at": inv.decided_at,
        "decided_by": inv.decided_by.email if inv.decided_by else None,
        "decision_comment": inv.decision_comment,
        "deny_reason": inv.deny_reason,
        "due_on": inv.due_on,
        "documents": {
            kind: (url_for("api_reports.download", number=inv.number, format=kind) if kind in docs else None)
            for kind in ("pdf", "csv")
        },
    }


def _detail(inv: Invoice) -> dict:
    totals = {
        dimension: [
            {
                "key": t.key,
                "label": t.label,
                "amount": _money(t.amount_minor, inv.currency),
                "amount_minor": t.amount_minor,
                "line_count": t.line_count,
            }
            for t in rows
        ]
        for dimension, rows in queries.totals(inv).items()
    }
    flagged = [
        {"line_id": d.line_item_id, "comment": d.comment, "raised_at": d.created_at}
        for d in disputes.open_disputes(inv).values()
    ]
    return {**_report(inv), "totals": totals, "open_disputes": flagged}


def _line(row, flagged: set[int]) -> dict:
    line, employee, partner, _filename, is_adjustment = row
    return {
        "id": line.id,
        "employee": {"external_id": employee.external_id, "name": employee.name},
        "partner": partner.slug,
        "partner_reference": line.partner_reference,
        "expense_type": line.expense_type,
        "description": line.description or "",
        "term": line.term,
        "service_date": line.service_date,
        "amount": _money(line.amount_minor, line.currency),
        "amount_minor": line.amount_minor,
        "currency": line.currency,
        "is_adjustment": bool(is_adjustment),
        "disputed": line.id in flagged,
    }


# --- lookups ---------------------------------------------------------------------------------------


def find_invoice(number: str) -> Invoice:
    """The invoice with this number if the token's user may see it (tenancy.scoped); else 404."""
    inv = db.session.scalar(scoped(Invoice).where(Invoice.number == number))
    if inv is None:
        abort_problem(404)
    return inv


def with_invoice(view):
    """Resolve `number` to the invoice before the body is read, so that another tenant's invoice is
    a 404 whatever the body holds (never a 422 that would tell it exists)."""

    @wraps(view)
    def wrapped(*args, number: str, **kwargs):
        return view(*args, invoice=find_invoice(number), **kwargs)

    return wrapped


def _decide(action) -> None:
    """Run a state change and commit it; the state refusing it is a 409 problem with the reason."""
    try:
        action()
    except lifecycle.InvoiceStateError as exc:
        db.session.rollback()
        abort_problem(409, detail=str(exc))
    db.session.commit()


# --- routes ----------------------------------------------------------------------------------------


@blp.route("/reports")
@roles_required(*READERS)
@blp.arguments(ReportListArgs, location="query")
@blp.response(200, ReportPageSchema)
def reports(args):
    """List invoices, newest first: an admin every customer's, a contact its customer's.

    Filters: `status`, `period` (YYYY-MM), `customer` (code), `currency`. Cursor pagination: pass
    `next_cursor` back as `cursor`; invoices made meanwhile never repeat or shift a page.
    """
    stmt = scoped(Invoice)
    if args.get("status"):
        stmt = stmt.where(Invoice.status == InvoiceStatus(args["status"]))
    if args.get("period"):
        try:
            period = parse_period(args["period"])
        except InputError as exc:
            abort_problem(422, errors=[{"field": "period", "message": exc.description}])
        stmt = stmt.where(Invoice.period_start == period.start)
    if args.get("customer"):
        stmt = stmt.join(Customer, Customer.id == Invoice.customer_id).where(
            Customer.code == args["customer"].strip().upper()
        )
    if args.get("currency"):
        stmt = stmt.where(Invoice.currency == args["currency"].upper())
    stmt = stmt.options(selectinload(Invoice.customer), selectinload(Invoice.decided_by))
    page = paginate(stmt, key=Invoice.id, limit=args["limit"], cursor=args["cursor"], descending=True)
    docs: dict[int, set[str]] = {}
    for invoice_id, kind in db.session.execute(
        select(InvoiceDocument.invoice_id, InvoiceDocument.kind).where(
            InvoiceDocument.invoice_id.in_([inv.id for inv in page.items])
        )
    ):
        docs.setdefault(invoice_id, set()).add(kind)
    items = [_report(inv, docs.get(inv.id, set())) for inv in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@blp.route("/reports/<number>")
@roles_required(*READERS)
@blp.response(200, ReportDetailSchema)
def report(number: str):
    """One invoice with its totals by employee, partner and expense type and its open disputes.

    Recorded as a view of the invoice, like its page.
    """
    inv = find_invoice(number)
    audit.record_view("invoice.viewed", subject=inv)
    db.session.commit()
    return _detail(inv)


@blp.route("/reports/<number>/lines")
@roles_required(*READERS)
@blp.arguments(LineListArgs, location="query")
@blp.response(200, LinePageSchema)
def report_lines(args, number: str):
    """The lines this invoice (revision) bills, by line id, with `q` and `expense_type` filters."""
    inv = find_invoice(number)
    stmt = queries.lines_select(inv, q=args.get("q", ""), expense_type=args.get("expense_type", ""))
    page = paginate(stmt, key=LineItem.id, limit=args["limit"], cursor=args["cursor"], scalars=False)
    flagged = set(disputes.open_disputes(inv))
    return {"items": [_line(row, flagged) for row in page.items], "next_cursor": page.next_cursor}


@blp.route("/reports/<number>/download")
@roles_required(*READERS)
@blp.arguments(DownloadArgs, location="query")
@blp.doc(
    responses={
        "200": {
            "description": "The stored PDF or CSV, the same bytes every time (sha256 in X-Content-SHA256).",
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }
)
@blp.alt_response(404, response="NOT_FOUND")
def download(args, number: str):
    """Download the invoice's stored PDF or CSV.

    The same bytes as the invoice page serves (recorded as a download). The documents are made when
    the invoice is approved: before that, 404."""
    inv = find_invoice(number)
    if args["format"] not in invoice_views.documents(inv):
        abort_problem(
            404,
            detail=f"Invoice {inv.number} has no {args['format'].upper()} yet: "
            "its documents are made when it is approved.",
        )
    return invoice_views.download(inv, args["format"])


@blp.route("/reports/<number>/approve", methods=["POST"])
@roles_required(*DECIDERS)
@idempotent
@with_invoice
@blp.arguments(ApproveSchema, required=False)
@blp.response(200, ReportDetailSchema)
@blp.alt_response(409, response="CONFLICT")
def approve(body, invoice: Invoice):
    """Approve an invoice awaiting decision.

    With an optional `comment`; its PDF and CSV are then made and delivered. Refused (409) once
    decided, naming who decided, or while a line is disputed."""
    _decide(lambda: lifecycle.approve(invoice, by=current_user, comment=body.get("comment")))
    return _detail(invoice)


@blp.route("/reports/<number>/deny", methods=["POST"])
@roles_required(*DECIDERS)
@idempotent
@with_invoice
@blp.arguments(DenySchema)
@blp.response(200, ReportDetailSchema)
@blp.alt_response(409, response="CONFLICT")
def deny(body, invoice: Invoice):
    """Deny an invoice awaiting decision, with a reason.

    `reason` is required (422 without one); our team is told and issues a corrected revision.
    Refused (409) once decided."""
    _decide(lambda: lifecycle.deny(invoice, by=current_user, reason=body["reason"]))
    return _detail(invoice)


@blp.route("/reports/<number>/lines/<id:line_id>/dispute", methods=["POST"])
@roles_required(*DECIDERS)
@idempotent
@with_invoice
@blp.arguments(DisputeArgsSchema)
@blp.response(200, DisputeSchema)
@blp.alt_response(409, response="CONFLICT")
def dispute(body, invoice: Invoice, line_id: int):
    """Dispute a line of an invoice awaiting decision.

    With a `comment` (sent again: the comment is changed); a line not on the invoice is a 404, an
    invoice decided meanwhile a 409. The invoice cannot then be approved whole."""
    on_invoice = db.session.scalar(
        select(LineItem.id).where(LineItem.id == line_id, LineItem.invoice_id == invoice.id)
    )
    if on_invoice is None:
        abort_problem(404, detail=f"Line {line_id} is not on invoice {invoice.number}.")
    _decide(lambda: disputes.flag_line(invoice, line_id, by=current_user, comment=body["comment"]))
    found = disputes.open_disputes(invoice)[line_id]
    return {"line_id": found.line_item_id, "comment": found.comment, "raised_at": found.created_at}
