"""The invoice CSV: one row per billed line item, with stable, documented columns.

Read by one set-based query over the revision's own `invoice_lines`; every text cell goes through
`csvsafe.safe_cell` and amounts are exact decimals, so the file is safe to open in a spreadsheet.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from portal.core.csvsafe import safe_cell
from portal.core.money import to_decimal
from portal.extensions import db
from portal.models import Employee, Invoice, InvoiceLine, LineItem, Partner, Upload

# The documented column order; append new columns at the end only, so consumers never break.
CSV_COLUMNS = (
    "invoice_number",  # e.g. ACME-2026-10-1
    "employee_external_id",  # the customer's id for the person
    "employee_name",
    "partner",  # the partner's name
    "expense_type",  # tuition | materials | tutoring | fees | other
    "service_date",  # ISO 8601 date, YYYY-MM-DD
    "description",
    "term",  # empty when the partner sent none
    "amount",  # plain decimal in major units: 1234.50, -45.00 (JPY: 1234)
    "currency",  # ISO 4217
    "prior_period_adjustment",  # yes | no: a late line from an earlier period
    "source_upload_id",  # the upload the line came from ...
    "source_filename",  # ... its file name as the partner sent it ...
    "source_row",  # ... and the row in that file
    "line_item_id",  # our id for the line
)


def line_rows(invoice_id: int) -> list:
    """The revision's lines with everything the deliverables show, in the files' order.

    Ordered by employee name (external id breaks ties between namesakes, so each person's lines stay
    together), then service date, then line id: the same order in the CSV and the PDF, every time.
    """
    return db.session.execute(
        select(
            LineItem.id,
            LineItem.expense_type,
            LineItem.amount_minor,
            LineItem.currency,
            LineItem.service_date,
            LineItem.description,
            LineItem.term,
            LineItem.upload_id,
            LineItem.source_row,
            LineItem.employee_id,
            Employee.external_id.label("employee_external_id"),
            Employee.name.label("employee_name"),
            Partner.name.label("partner_name"),
            Upload.filename.label("source_filename"),
            InvoiceLine.is_adjustment,
        )
        .join(InvoiceLine, InvoiceLine.line_item_id == LineItem.id)
        .join(Employee, Employee.id == LineItem.employee_id)
        .join(Partner, Partner.id == LineItem.partner_id)
        .join(Upload, Upload.id == LineItem.upload_id)
        .where(InvoiceLine.invoice_id == invoice_id)
        .order_by(Employee.name, Employee.external_id, LineItem.service_date, LineItem.id)
    ).all()


def plain_amount(amount_minor: int, currency: str) -> str:
    """1234.50 / -45.00: exact, no grouping, no symbol, so spreadsheets read it as a number."""
    return format(to_decimal(amount_minor, currency), "f")


def invoice_csv(invoice_id: int, rows: list | None = None) -> bytes:
    """The invoice's CSV as UTF-8 bytes (header row, CRLF line ends as RFC 4180 says).

    `rows`: the invoice's `line_rows`, when the caller has them already (the render job reads them
    once for both files).
    """
    number = db.session.scalar(select(Invoice.number).where(Invoice.id == invoice_id))
    if number is None:
        raise LookupError(f"no invoice {invoice_id}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in line_rows(invoice_id) if rows is None else rows:
        writer.writerow(
            [
                safe_cell(number),
                safe_cell(row.employee_external_id),
                safe_cell(row.employee_name),
                safe_cell(row.partner_name),
                safe_cell(row.expense_type),
                row.service_date.isoformat(),
                safe_cell(row.description),
                safe_cell(row.term),
                safe_cell(plain_amount(row.amount_minor, row.currency)),
                safe_cell(row.currency),
                "yes" if row.is_adjustment else "no",
                row.upload_id,
                safe_cell(row.source_filename),
                row.source_row,
                row.id,
            ]
        )
    return out.getvalue().encode("utf-8")
