"""The invoice PDF: HTML from a Jinja template, laid out by WeasyPrint as PDF/A-3b with the CSV inside.

`invoice_html` runs in the app (it reads the database); `render_pdf` needs only the HTML and the CSV,
so the sandbox can run it in a child process with no database or app at all.
"""

from __future__ import annotations

import base64
import datetime as dt
import mimetypes
from itertools import groupby
from pathlib import Path

from flask import current_app
from sqlalchemy import exists, select

from portal.core import formatting
from portal.core.money import money_formatter
from portal.extensions import db
from portal.invoicing import queries
from portal.models import Dispute, Employee, Invoice, InvoiceLine, LineItem, Partner
from portal.rendering import columns
from portal.rendering.columns import Column
from portal.rendering.csv_export import line_rows
from portal.rendering.pdfa import write_pdfa

DEFAULT_COMPANY_NAME = "Tuition Invoice Portal"
DEFAULT_COMPANY_ADDRESS = "1 Learning Way\nSpringfield, ST 00000\nUnited States"
LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}


def _logo_data_uri(path: str | Path) -> str | None:
    """The logo file as a data: URI, so the rendering process needs no file access; None if unreadable."""
    path = Path(path)
    kind = LOGO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return f"data:{kind or 'application/octet-stream'};base64,{base64.b64encode(data).decode()}"


def our_details_from_config() -> dict:
    """Our name, address lines, logo, contact and payment instructions, from the COMPANY_* settings."""
    config = current_app.config
    address = config.get("COMPANY_ADDRESS") or DEFAULT_COMPANY_ADDRESS
    logo = config.get("COMPANY_LOGO") or Path(current_app.static_folder) / "brand.svg"
    return {
        "name": config.get("COMPANY_NAME") or DEFAULT_COMPANY_NAME,
        "address": [line.strip() for line in address.splitlines() if line.strip()],
        "email": config.get("COMPANY_EMAIL") or "",
        "remit_to": config.get("REMIT_TO") or "",
        "logo": _logo_data_uri(logo),
    }


def issued_at(invoice: Invoice) -> dt.datetime:
    """The moment the PDF says it was made: the approval, so a re-render gives the same bytes."""
    moment = invoice.decided_at or invoice.created_at
    return moment.astimezone(dt.UTC).replace(microsecond=0)


# The line table, in mm of the text column (A4 less 2 x 14 mm margins less the blocks' 2 x 2 mm
# padding: 178 mm), at LINE_PT. Keep in step with invoice.html's `.l` font size.
LINE_PT = 7.5
_MM_PER_EM = LINE_PT * 25.4 / 72
COLUMN_MM = {
    "date": (0, 20, "left"),
    "type": (20, 35, "left"),
    "partner": (35, 84, "left"),
    "description": (84, 154, "left"),
    "amount": (154, 178, "right"),
}
COLUMNS = [Column(start / _MM_PER_EM, end / _MM_PER_EM, align) for start, end, align in COLUMN_MM.values()]
_GUTTER_EM = 1.0  # free space kept at the right of a wrapped cell
HEADINGS = ["Date", "Type", "Partner", "Description", "Amount"]


def printed_lines(date: str, partner: str, kind: str, description: str, amount: str) -> list[str]:
    """One invoice line as text lines: the cells at their columns, long partner and description
    wrapped onto continuation lines below."""
    partner_col, description_col = COLUMNS[2], COLUMNS[3]
    partners = columns.wrap(partner, partner_col.end - partner_col.start - _GUTTER_EM)
    descriptions = columns.wrap(description, description_col.end - description_col.start - _GUTTER_EM)
    lines = [columns.line([date, kind, partners[0], descriptions[0], amount], COLUMNS)]
    for i in range(1, max(len(partners), len(descriptions))):
        p = partners[i] if i < len(partners) else ""
        d = descriptions[i] if i < len(descriptions) else ""
        lines.append(columns.line(["", "", p, d, ""], COLUMNS))
    return lines


def held_lines(invoice: Invoice) -> list:
    """Lines disputed on this invoice that are not on it: held off at approval, billed or dropped later."""
    return db.session.execute(
        select(
            LineItem.id,
            LineItem.service_date,
            LineItem.description,
            LineItem.term,
            LineItem.amount_minor,
            Employee.name.label("employee_name"),
            Employee.external_id.label("employee_external_id"),
            Partner.name.label("partner_name"),
        )
        .join(Dispute, Dispute.line_item_id == LineItem.id)
        .join(Employee, Employee.id == LineItem.employee_id)
        .join(Partner, Partner.id == LineItem.partner_id)
        .where(
            Dispute.invoice_id == invoice.id,
            ~exists().where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.line_item_id == LineItem.id),
        )
        .order_by(Employee.name, Employee.external_id, LineItem.service_date, LineItem.id)
    ).all()


def invoice_html(invoice_id: int, *, our_details: dict | None = None, rows: list | None = None) -> str:
    """The invoice as print HTML: parties, facts, summary, lines grouped by employee, totals, payment.

    Money, dates and numbers are formatted in the customer's locale. `rows`: the invoice's
    `line_rows`, when the caller has them already.
    """
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        raise LookupError(f"no invoice {invoice_id}")
    customer = invoice.customer
    locale = customer.locale or formatting.DEFAULT_LOCALE
    zone = customer.timezone or "UTC"
    currency = invoice.currency
    # Babel is slow per call; a billing month repeats the same few amounts and dates: remember them.
    amounts: dict[int, str] = {}
    days: dict[dt.date, str] = {}
    format_amount = money_formatter(currency, locale)

    def money(minor: int) -> str:
        text = amounts.get(minor)
        if text is None:
            text = amounts[minor] = format_amount(minor)
        return text

    def day(value: dt.date) -> str:
        text = days.get(value)
        if text is None:
            text = days[value] = formatting.date(value, locale)
        return text

    def count(n: int, noun: str) -> str:
        return f"{formatting.number(n, locale)} {noun}{'' if n == 1 else 's'}"

    groups = []
    ordered = line_rows(invoice_id) if rows is None else rows
    for _, rows_of_one in groupby(ordered, key=lambda r: (r.employee_name, r.employee_external_id)):
        group = list(rows_of_one)
        lines = []
        for r in group:
            description = (r.description or "") + (f" ({r.term})" if r.term else "")
            lines.extend(
                printed_lines(
                    day(r.service_date),
                    r.partner_name,
                    r.expense_type.capitalize(),
                    description + (" *" if r.is_adjustment else ""),
                    money(r.amount_minor),
                )
            )
        name = group[0].employee_name
        groups.append(
            {
                "name": name,
                "external_id": group[0].employee_external_id,
                "count": count(len(group), "line"),
                "lines": lines,
                "subtotal_line": columns.line(
                    [
                        "",
                        "",
                        f"Subtotal {name} ({count(len(group), 'line')})",
                        "",
                        money(sum(r.amount_minor for r in group)),
                    ],
                    COLUMNS,
                    bold=True,
                ),  # fmt: skip
            }
        )
    totals = queries.totals(invoice)

    def breakdown(dimension: str) -> list[dict]:
        return [
            {
                "label": t.label,
                "line_count": formatting.number(t.line_count, locale),
                "amount": money(t.amount_minor),
            }
            for t in totals.get(dimension, [])
        ]

    held_rows = held_lines(invoice)
    held = [
        {
            "employee": f"{h.employee_name} ({h.employee_external_id})",
            "date": day(h.service_date),
            "partner": h.partner_name,
            "description": (h.description or "") + (f" ({h.term})" if h.term else ""),
            "amount": money(h.amount_minor),
        }
        for h in held_rows
    ]
    our = our_details or our_details_from_config()
    issued = issued_at(invoice)
    if invoice.due_on:
        due = invoice.due_on
    else:  # approved before due dates were kept: the rule approval uses, from the approval
        # Imported here: a real cycle (lifecycle imports the render job, which imports this module).
        from portal.invoicing.lifecycle import due_date

        due = due_date(customer, issued)
    # Through the Jinja environment, not render_template: the pages' context processors (which
    # build URLs for a request) have no business in a render job.
    return current_app.jinja_env.get_template("rendering/invoice.html").render(
        invoice=invoice,
        customer=customer,
        lang=formatting.language_tag(locale),
        our=our,
        remit_to=[
            line.strip().replace("{number}", invoice.number)
            for line in (our.get("remit_to") or "").splitlines()
            if line.strip()
        ],
        groups=groups,
        header=columns.line(HEADINGS, COLUMNS, bold=True),
        by_type=breakdown("expense_type"),
        by_partner=breakdown("partner"),
        line_count=count(invoice.line_count, "line"),
        employee_count=count(invoice.employee_count, "employee"),
        partner_count=count(invoice.partner_count, "partner"),
        adjustment_count=count(invoice.adjustment_count, "line"),
        total=money(invoice.total_minor),
        credit=money(-invoice.total_minor),
        lines_total=money(invoice.total_minor - invoice.adjustment_minor),
        adjustment=money(invoice.adjustment_minor),
        held=held,
        held_total=money(sum(h.amount_minor for h in held_rows)),
        period=formatting.period(invoice.period_start, locale),
        period_range=f"{day(invoice.period_start)} – {day(invoice.period_end)}",
        issued_w3c=issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        issued_date=formatting.date(issued, locale, zone),
        due_date=day(due),
        payment_terms=customer.payment_terms,
    )


def render_pdf(html: str, csv_bytes: bytes, *, filename_stem: str) -> bytes:
    """Lay out `html` and write a PDF/A-3b with `csv_bytes` embedded as `<filename_stem>.csv`.

    In this process; jobs go through `sandbox.render_pdf_capped`, which runs the same function in a
    child process with a time and memory cap.
    """
    return write_pdfa(html, csv_bytes, filename_stem=filename_stem)
