"""The invoice PDF: HTML from a Jinja template, laid out by WeasyPrint as PDF/A-3b with the CSV inside.

`invoice_html` runs in the app (it reads the database); `render_pdf` needs only the HTML and the CSV,
so the sandbox can run it in a child process with no database or app at all.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from itertools import groupby, zip_longest

from flask import current_app, render_template

from portal.core.money import money_formatter
from portal.extensions import db
from portal.invoicing import queries
from portal.models import Invoice
from portal.rendering.csv_export import line_rows
from portal.rendering.pdfa import write_pdfa

DEFAULT_COMPANY_NAME = "Tuition Invoice Portal"
DEFAULT_COMPANY_ADDRESS = "1 Learning Way\nSpringfield, ST 00000\nUnited States"


def our_details_from_config() -> dict:
    """Our name and address lines, from COMPANY_NAME / COMPANY_ADDRESS (newline-separated)."""
    address = current_app.config.get("COMPANY_ADDRESS") or DEFAULT_COMPANY_ADDRESS
    return {
        "name": current_app.config.get("COMPANY_NAME") or DEFAULT_COMPANY_NAME,
        "address": [line.strip() for line in address.splitlines() if line.strip()],
    }


def issued_at(invoice: Invoice) -> dt.datetime:
    """The moment the PDF says it was made: the approval, so a re-render gives the same bytes."""
    moment = invoice.decided_at or invoice.created_at
    return moment.astimezone(dt.UTC).replace(microsecond=0)


# Column widths in characters of the monospaced line blocks (7pt DejaVu Sans Mono: 107 characters
# fill the A4 text width). Long partner names and descriptions wrap onto continuation lines.
DATE_W, PARTNER_W, TYPE_W, DESCRIPTION_W, AMOUNT_W = 11, 27, 11, 44, 14


def printed_lines(
    date: str, partner: str, kind: str, description: str, amount: str, *, wrap=True
) -> list[str]:
    """One invoice line as fixed-width text lines: the columns padded, long text wrapped below."""
    if not wrap:
        return [
            f"{date:<{DATE_W}}{partner}".ljust(DATE_W + PARTNER_W + TYPE_W + DESCRIPTION_W)
            + amount.rjust(AMOUNT_W)
        ]
    partners = _wrapped(partner, PARTNER_W - 1)
    descriptions = _wrapped(description, DESCRIPTION_W - 1)
    lines = []
    for i, (p, d) in enumerate(zip_longest(partners, descriptions, fillvalue="")):
        first = i == 0
        lines.append(
            f"{date if first else '':<{DATE_W}}{p:<{PARTNER_W}}{kind if first else '':<{TYPE_W}}"
            f"{d:<{DESCRIPTION_W}}{amount if first else '':>{AMOUNT_W}}"
        )
    return lines


_SPECIAL_WHITESPACE = frozenset("\t\n\r\x0b\x0c")


def _wrapped(text: str, width: int) -> list[str]:
    """`textwrap.wrap(text, width) or [""]`, without textwrap's cost for the usual short text."""
    if text and len(text) <= width and not text[-1].isspace() and _SPECIAL_WHITESPACE.isdisjoint(text):
        return [text]  # what textwrap gives for it, about 20 times faster
    return textwrap.wrap(text, width) or [""]


def invoice_html(invoice_id: int, *, our_details: dict | None = None, rows: list | None = None) -> str:
    """The invoice as print HTML: parties, facts, summary, lines grouped by employee, totals.

    `rows`: the invoice's `line_rows`, when the caller has them already.
    """
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        raise LookupError(f"no invoice {invoice_id}")
    currency = invoice.currency
    # Babel is slow per call; a billing month repeats the same few amounts, so remember them.
    cache: dict[int, str] = {}
    format_amount = money_formatter(currency)

    def money(minor: int) -> str:
        text = cache.get(minor)
        if text is None:
            text = cache[minor] = format_amount(minor)
        return text

    groups = []
    ordered = line_rows(invoice_id) if rows is None else rows
    for _, rows_of_one in groupby(ordered, key=lambda r: (r.employee_name, r.employee_external_id)):
        group = list(rows_of_one)
        subtotal = sum(r.amount_minor for r in group)
        count = f"{len(group)} line" + ("" if len(group) == 1 else "s")
        lines = []
        for r in group:
            description = (r.description or "") + (f" ({r.term})" if r.term else "")
            lines.extend(
                printed_lines(
                    r.service_date.isoformat(),
                    r.partner_name,
                    r.expense_type,
                    description + (" *" if r.is_adjustment else ""),
                    money(r.amount_minor),
                )
            )
        groups.append(
            {
                "name": group[0].employee_name,
                "external_id": group[0].employee_external_id,
                "lines": lines,
                "subtotal_line": printed_lines(
                    "", f"Subtotal {group[0].employee_name} ({count})", "", "", money(subtotal), wrap=False
                )[0],
            }
        )
    totals = queries.totals(invoice)

    def breakdown(dimension: str) -> list[dict]:
        return [
            {"label": t.label, "line_count": t.line_count, "amount": money(t.amount_minor)}
            for t in totals.get(dimension, [])
        ]

    issued = issued_at(invoice)
    return render_template(
        "rendering/invoice.html",
        invoice=invoice,
        customer=invoice.customer,
        our=our_details or our_details_from_config(),
        groups=groups,
        header=printed_lines("Date", "Partner", "Type", "Description", "Amount")[0],
        by_type=breakdown("expense_type"),
        by_partner=breakdown("partner"),
        total=money(invoice.total_minor),
        adjustment=money(invoice.adjustment_minor),
        issued_w3c=issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        issued_date=issued.date().isoformat(),
    )


def render_pdf(html: str, csv_bytes: bytes, *, filename_stem: str) -> bytes:
    """Lay out `html` and write a PDF/A-3b with `csv_bytes` embedded as `<filename_stem>.csv`.

    In this process; jobs go through `sandbox.render_pdf_capped`, which runs the same function in a
    child process with a time and memory cap.
    """
    return write_pdfa(html, csv_bytes, filename_stem=filename_stem)
