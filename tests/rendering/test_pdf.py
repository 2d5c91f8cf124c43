"""The invoice PDF: what a reader sees on the pages, the CSV inside, and the PDF/A-3 declaration."""

import io

import pytest
from pypdf import PdfReader

from portal.rendering.csv_export import invoice_csv
from portal.rendering.pdf import invoice_html, render_pdf
from tests.factories import build_invoice

OUR = {"name": "Example Benefits LLC", "address": ["1 Main St", "Springfield"]}


@pytest.fixture
def rendered(app, billing):
    billing.add(120000, "2026-10-03", employee="E1")
    billing.add(8999, "2026-10-20", employee="E1", expense_type="materials", partner="code-camp")
    billing.add(50000, "2026-10-04", employee="E2")
    invoice_id = build_invoice(app)
    with app.app_context():
        csv_bytes = invoice_csv(invoice_id)
        pdf = render_pdf(invoice_html(invoice_id, our_details=OUR), csv_bytes, filename_stem="ACME-2026-10-1")
    return PdfReader(io.BytesIO(pdf)), csv_bytes, pdf


def page_text(reader):
    return "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_when_rendered_shows_number_customer_and_our_details(rendered):
    text = page_text(rendered[0])
    assert "ACME-2026-10-1" in text and "Acme Inc" in text and "Example Benefits LLC" in text
    assert "October 2026" in text


def test_pdf_when_employee_has_two_lines_shows_their_subtotal(rendered):
    text = page_text(rendered[0])
    assert "Subtotal Person 1 (2 lines)" in text and "$1,289.99" in text
    assert "Subtotal Person 2 (1 line)" in text and "$500.00" in text
    assert "$1,789.99" in text  # the invoice total


def test_pdf_when_rendered_numbers_pages_x_of_y(rendered):
    reader = rendered[0]
    assert f"Page 1 of {len(reader.pages)}" in reader.pages[0].extract_text()


def test_pdf_when_rendered_embeds_the_csv_byte_for_byte(rendered):
    reader, csv_bytes, _ = rendered
    assert reader.attachments == {"ACME-2026-10-1.csv": [csv_bytes]}


def test_pdf_when_rendered_declares_pdfa_3(rendered):
    reader = rendered[0]
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3"' in xmp or "<pdfaid:part>3</pdfaid:part>" in xmp
    assert "/AF" in reader.trailer["/Root"]  # PDF/A-3 associated file: the CSV


def test_pdf_when_rendered_twice_gives_identical_bytes(app, rendered):
    _, csv_bytes, first = rendered
    with app.app_context():
        from sqlalchemy import select

        from portal.extensions import db
        from portal.models import Invoice

        invoice_id = db.session.scalar(select(Invoice.id))
        second = render_pdf(
            invoice_html(invoice_id, our_details=OUR), csv_bytes, filename_stem="ACME-2026-10-1"
        )
    assert second == first


def test_pdf_when_many_lines_repeats_table_header_on_each_page(app, billing):
    for day in range(1, 29):
        for _ in range(9):
            billing.add(1000 + day, f"2026-10-{day:02d}", employee="E1")
    invoice_id = build_invoice(app)
    with app.app_context():
        pdf = render_pdf(
            invoice_html(invoice_id, our_details=OUR), invoice_csv(invoice_id), filename_stem="x"
        )
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 3
    assert all("Description" in page.extract_text() for page in reader.pages)
