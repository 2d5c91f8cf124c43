"""Read-side helpers for invoice pages: an invoice's lines (as billed by that revision) and totals."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Employee, Invoice, InvoiceLine, InvoiceTotal, LineItem, Partner, Upload


def invoice_lines(invoice: Invoice, *, limit: int = 100, offset: int = 0) -> list:
    """The lines this revision billed, ordered by employee then date, with where each came from."""
    return db.session.execute(
        select(LineItem, Employee, Partner, Upload.filename, InvoiceLine.is_adjustment)
        .join(InvoiceLine, InvoiceLine.line_item_id == LineItem.id)
        .join(Employee, Employee.id == LineItem.employee_id)
        .join(Partner, Partner.id == LineItem.partner_id)
        .join(Upload, Upload.id == LineItem.upload_id)
        .where(InvoiceLine.invoice_id == invoice.id)
        .order_by(InvoiceLine.is_adjustment, Employee.name, LineItem.service_date, LineItem.id)
        .limit(limit)
        .offset(offset)
    ).all()


def line_count(invoice: Invoice) -> int:
    return db.session.scalar(select(func.count(InvoiceLine.id)).where(InvoiceLine.invoice_id == invoice.id))


def totals(invoice: Invoice) -> dict[str, list[InvoiceTotal]]:
    """Stored subtotals by dimension (employee, partner, expense_type), largest first."""
    grouped: dict[str, list[InvoiceTotal]] = {"employee": [], "partner": [], "expense_type": []}
    for total in db.session.scalars(
        select(InvoiceTotal)
        .where(InvoiceTotal.invoice_id == invoice.id)
        .order_by(InvoiceTotal.amount_minor.desc(), InvoiceTotal.label)
    ):
        grouped.setdefault(total.dimension, []).append(total)
    return grouped


def revisions(invoice: Invoice) -> list[Invoice]:
    """Every revision of the same customer, period and currency, oldest first."""
    return list(
        db.session.scalars(
            select(Invoice)
            .where(
                Invoice.customer_id == invoice.customer_id,
                Invoice.period_start == invoice.period_start,
                Invoice.currency == invoice.currency,
            )
            .order_by(Invoice.revision)
        )
    )
