"""Read-side helpers for invoice pages: an invoice's lines (as billed by that revision) and totals."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

from cachetools import TTLCache
from flask import current_app
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


def _filtered(stmt, *, q: str = "", partner_id: int | None = None, expense_type: str = "",
              employee_id: int | None = None):  # fmt: skip
    """`stmt` (over line_items joined to employees) narrowed by the line table's filters."""
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
    """The SELECT of the revision's lines, filtered, without order or page, for a caller that pages
    by its own key (the API's cursor): rows of (LineItem, Employee, Partner, upload file name,
    is_adjustment)."""
    stmt = (
        select(LineItem, Employee, Partner, Upload.filename, InvoiceLine.is_adjustment)
        .join(InvoiceLine, InvoiceLine.line_item_id == LineItem.id)
        .join(Employee, Employee.id == LineItem.employee_id)
        .join(Partner, Partner.id == LineItem.partner_id)
        .join(Upload, Upload.id == LineItem.upload_id)
        .where(InvoiceLine.invoice_id == invoice.id)
    )
    return _filtered(stmt, **filters)


# An invoice's set of lines never changes: `invoice_lines` is written once, when the revision is
# built (a correction is a new revision, a new invoice). So the order of a filtered, sorted view can
# be kept, and each page reads only its own rows by primary key, instead of joining, sorting and
# counting every line of a month-end invoice on every request. Kept per process for a minute (an
# employee renamed meanwhile sorts under the new name within that minute; the rows shown are always
# read fresh), bounded by the number of ids held in all (a few MB).
ORDER_TTL_SECONDS = 60
ORDER_CACHE_IDS = 500_000


def _order_cache() -> TTLCache:
    cache = current_app.extensions.get("invoice_line_orders")
    if cache is None:
        cache = current_app.extensions.setdefault(
            "invoice_line_orders", TTLCache(maxsize=ORDER_CACHE_IDS, ttl=ORDER_TTL_SECONDS, getsizeof=len)
        )
    return cache


_order_lock = threading.Lock()


def line_order(invoice: Invoice, *, sort: str = "employee", **filters) -> tuple[int, ...]:
    """The ids of the revision's lines matching `filters`, in the table's order (adjustments last)."""
    key = (invoice.id, sort, tuple(sorted(filters.items())))
    cache = _order_cache()
    with _order_lock:
        found = cache.get(key)
    if found is not None:
        return found
    order = SORTS.get(sort, SORTS["employee"])
    stmt = (
        select(LineItem.id)
        .join(InvoiceLine, InvoiceLine.line_item_id == LineItem.id)
        .join(Employee, Employee.id == LineItem.employee_id)
        .where(InvoiceLine.invoice_id == invoice.id)
        .order_by(InvoiceLine.is_adjustment, *order)
    )
    ids = tuple(db.session.scalars(_filtered(stmt, **filters)))
    with _order_lock, contextlib.suppress(ValueError):  # ValueError: larger than the whole cache
        cache[key] = ids
    return ids


def invoice_lines(
    invoice: Invoice, *, limit: int = 100, offset: int = 0, sort: str = "employee", **filters
) -> list:
    """The lines this revision billed, filtered and sorted, with where each came from: the page's
    ids from `line_order`, then one query for those rows."""
    ids = line_order(invoice, sort=sort, **filters)[offset : offset + limit]
    if not ids:
        return []
    rows = db.session.execute(lines_select(invoice).where(LineItem.id.in_(ids))).all()
    position = {line_id: n for n, line_id in enumerate(ids)}
    return sorted(rows, key=lambda row: position[row[0].id])


def count_lines(invoice: Invoice, *, sort: str = "employee", **filters) -> int:
    """How many lines match `filters` (the sort only picks which kept order is counted)."""
    return len(line_order(invoice, sort=sort, **filters))


def totals(invoice: Invoice) -> dict[str, list]:
    """Stored subtotals by dimension (employee, partner, expense_type), largest first: read-only rows
    with `key`, `label`, `amount_minor` and `line_count` (plain rows, not entities: a month-end
    invoice has one per employee, and the page reads them on every view)."""
    grouped: dict[str, list] = {"employee": [], "partner": [], "expense_type": []}
    for total in db.session.execute(
        select(
            InvoiceTotal.dimension,
            InvoiceTotal.key,
            InvoiceTotal.label,
            InvoiceTotal.amount_minor,
            InvoiceTotal.line_count,
        )
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


def _last_periods(today: dt.date, months: int) -> list[Period]:
    """The `months` periods before today's, oldest first."""
    periods = []
    period = Period.of(today)
    for _ in range(months):
        period = period.previous
        periods.append(period)
    periods.reverse()
    return periods


def no_spend(today: dt.date, months: int = 12) -> dict:
    """A `monthly_spend` chart with nothing billed yet."""
    return {"currency": None, "periods": _last_periods(today, months), "series": [], "max": 0}


def monthly_spend(
    customer_id: int, dimension: str, *, today: dt.date, months: int = 12, currency: str | None = None
) -> dict:
    """Approved spend per month for the last `months` periods, split by partner or expense type.

    One currency per chart (`currency`, else the customer's most used one), so bars never add
    different currencies; the dashboard draws one pair of charts per currency.
    """
    periods = _last_periods(today, months)
    billed = (
        Invoice.customer_id == customer_id,
        Invoice.status.in_([InvoiceStatus.APPROVED, InvoiceStatus.DELIVERED]),
    )
    if currency is None:
        currency = next(iter(billed_currencies(customer_id)), None)
    if currency is None:
        return no_spend(today, months)
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
