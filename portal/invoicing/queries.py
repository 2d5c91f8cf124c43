"""Read-side helpers for invoice pages: an invoice's lines (as billed by that revision) and totals."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from portal.extensions import db
from portal.invoicing.periods import Period
from portal.models import (
    Employee,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    InvoiceTotal,
    LineItem,
    Partner,
    Upload,
)

SORTS = {
    "employee": (Employee.name, LineItem.service_date, LineItem.id),
    "date": (LineItem.service_date, LineItem.id),
    "amount": (LineItem.amount_minor, LineItem.id),
    "-amount": (LineItem.amount_minor.desc(), LineItem.id),
}


def _lines_query(invoice: Invoice, *, q: str = "", partner_id: int | None = None, expense_type: str = "",
                 employee_id: int | None = None):  # fmt: skip
    stmt = (
        select(LineItem, Employee, Partner, Upload.filename, InvoiceLine.is_adjustment)
        .join(InvoiceLine, InvoiceLine.line_item_id == LineItem.id)
        .join(Employee, Employee.id == LineItem.employee_id)
        .join(Partner, Partner.id == LineItem.partner_id)
        .join(Upload, Upload.id == LineItem.upload_id)
        .where(InvoiceLine.invoice_id == invoice.id)
    )
    if q:
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(
            func.lower(Employee.name).like(like)
            | func.lower(Employee.external_id).like(like)
            | func.lower(LineItem.description).like(like)
        )
    if partner_id:
        stmt = stmt.where(LineItem.partner_id == partner_id)
    if expense_type:
        stmt = stmt.where(LineItem.expense_type == expense_type)
    if employee_id:
        stmt = stmt.where(LineItem.employee_id == employee_id)
    return stmt


def lines_select(invoice: Invoice, **filters):
    """The SELECT of invoice_lines() without order or page, for a caller that pages by its own key
    (the API's cursor): rows of (LineItem, Employee, Partner, upload file name, is_adjustment)."""
    return _lines_query(invoice, **filters)


def invoice_lines(
    invoice: Invoice, *, limit: int = 100, offset: int = 0, sort: str = "employee", **filters
) -> list:
    """The lines this revision billed, filtered and sorted, with where each came from (one query)."""
    order = SORTS.get(sort, SORTS["employee"])
    stmt = (
        _lines_query(invoice, **filters)
        .order_by(InvoiceLine.is_adjustment, *order)
        .limit(limit)
        .offset(offset)
    )
    return db.session.execute(stmt).all()


def count_lines(invoice: Invoice, **filters) -> int:
    return db.session.scalar(select(func.count()).select_from(_lines_query(invoice, **filters).subquery()))


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


PALETTE = ["#1d4ed8", "#059669", "#d97706", "#7c3aed", "#dc2626", "#0891b2", "#4b5563"]


def billed_currencies(customer_id: int) -> list[str]:
    """The currencies of the customer's approved invoices, the most used first."""
    return list(
        db.session.scalars(
            select(Invoice.currency)
            .where(
                Invoice.customer_id == customer_id,
                Invoice.status.in_([InvoiceStatus.APPROVED, InvoiceStatus.DELIVERED]),
            )
            .group_by(Invoice.currency)
            .order_by(func.count().desc(), Invoice.currency)
        )
    )


def monthly_spend(
    customer_id: int, dimension: str, *, today: dt.date, months: int = 12, currency: str | None = None
) -> dict:
    """Approved spend per month for the last `months` periods, split by partner or expense type.

    One currency per chart (`currency`, else the customer's most used one), so bars never add
    different currencies; the dashboard draws one pair of charts per currency.
    """
    periods = []
    period = Period.of(today)
    for _ in range(months):
        period = period.previous
        periods.append(period)
    periods.reverse()
    billed = (
        Invoice.customer_id == customer_id,
        Invoice.status.in_([InvoiceStatus.APPROVED, InvoiceStatus.DELIVERED]),
    )
    if currency is None:
        currency = next(iter(billed_currencies(customer_id)), None)
    if currency is None:
        return {"currency": None, "periods": periods, "series": [], "max": 0}
    rows = db.session.execute(
        select(Invoice.period_start, InvoiceTotal.label, func.sum(InvoiceTotal.amount_minor))
        .join(InvoiceTotal, InvoiceTotal.invoice_id == Invoice.id)
        .where(
            *billed,
            Invoice.currency == currency,
            InvoiceTotal.dimension == dimension,
            Invoice.period_start >= periods[0].start,
        )
        .group_by(Invoice.period_start, InvoiceTotal.label)
    ).all()
    index = {p.start: i for i, p in enumerate(periods)}
    series: dict[str, list[int]] = {}
    for start, label, amount in rows:
        if start in index:
            series.setdefault(label, [0] * months)[index[start]] += int(amount)
    ordered = sorted(series.items(), key=lambda item: -sum(item[1]))
    if len(ordered) > len(PALETTE):  # the long tail is summed as "Other" so colours stay distinct
        head, tail = ordered[: len(PALETTE) - 1], ordered[len(PALETTE) - 1 :]
        ordered = [*head, ("Other", [sum(v[i] for _, v in tail) for i in range(months)])]
    totals = [sum(values[i] for _, values in ordered if values[i] > 0) for i in range(months)]
    return {
        "currency": currency,
        "periods": periods,
        "series": [
            {"label": label, "values": values, "color": PALETTE[i]}
            for i, (label, values) in enumerate(ordered)
        ],
        "max": max(totals) if totals else 0,
    }
