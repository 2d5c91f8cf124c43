"""The invoice CSV: documented columns, one row per billed line, exact amounts, no formulas."""

import csv
import io

from sqlalchemy import update

from portal.extensions import db
from portal.models import LineItem
from portal.rendering.csv_export import CSV_COLUMNS, invoice_csv
from tests.factories import build_invoice


def rows_of(app, invoice_id):
    with app.app_context():
        data = invoice_csv(invoice_id)
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def set_description(app, line_id, text):
    with app.app_context():
        db.session.execute(update(LineItem).where(LineItem.id == line_id).values(description=text))
        db.session.commit()


def test_invoice_csv_when_rendered_has_documented_header(app, billing):
    billing.add(100, "2026-10-03")
    header = rows_of(app, build_invoice(app))[0]
    assert header == list(CSV_COLUMNS)
    assert header == [
        "invoice_number",
        "employee_external_id",
        "employee_name",
        "partner",
        "expense_type",
        "service_date",
        "description",
        "term",
        "amount",
        "currency",
        "prior_period_adjustment",
        "source_upload_id",
        "source_filename",
        "source_row",
        "line_item_id",
    ]


def test_invoice_csv_when_three_lines_has_one_row_each_in_order_with_exact_amounts(app, billing):
    a = billing.add(123450, "2026-10-05", employee="E2", partner="code-camp", expense_type="materials")
    b = billing.add(1, "2026-10-03", employee="E1")
    c = billing.add(-4500, "2026-10-01", employee="E2")
    rows = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows_of(app, build_invoice(app))[1:]]
    assert [int(r["line_item_id"]) for r in rows] == [b, c, a]  # Person 1, then Person 2 by date
    assert [r["amount"] for r in rows] == ["0.01", "-45.00", "1234.50"]
    first = rows[2]
    assert (first["invoice_number"], first["employee_external_id"], first["employee_name"]) == (
        "ACME-2026-10-1",
        "E2",
        "Person 2",
    )
    assert (first["partner"], first["expense_type"], first["service_date"], first["currency"]) == (
        "Code Camp",
        "materials",
        "2026-10-05",
        "USD",
    )
    assert (first["prior_period_adjustment"], first["source_filename"], first["source_row"]) == (
        "no",
        "f.csv",
        "2",
    )


def test_invoice_csv_when_description_is_formula_neutralizes_it(app, billing):
    line = billing.add(100, "2026-10-03")
    set_description(app, line, '=HYPERLINK("http://evil.example","click")')
    (row,) = rows_of(app, build_invoice(app))[1:]
    assert row[CSV_COLUMNS.index("description")] == '\'=HYPERLINK("http://evil.example","click")'


def test_invoice_csv_when_amount_negative_keeps_it_a_number(app, billing):
    billing.add(-4500, "2026-10-03")
    (row,) = rows_of(app, build_invoice(app))[1:]
    assert row[CSV_COLUMNS.index("amount")] == "-45.00"


def test_invoice_csv_when_line_is_late_marks_prior_period_adjustment(app, billing):
    billing.add(100, "2026-10-03")
    build_invoice(app, period="2026-10")
    billing.add(50, "2026-10-30")  # arrives after October was invoiced
    billing.add(70, "2026-11-02")
    rows = rows_of(app, build_invoice(app, period="2026-11"))[1:]
    flags = {
        r[CSV_COLUMNS.index("service_date")]: r[CSV_COLUMNS.index("prior_period_adjustment")] for r in rows
    }
    assert flags == {"2026-10-30": "yes", "2026-11-02": "no"}
