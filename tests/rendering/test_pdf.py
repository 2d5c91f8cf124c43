"""The invoice PDF: what a reader sees on the pages, the CSV inside, and the PDF/A-3 declaration."""

import datetime as dt
import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import disputes
from portal.models import Customer, Invoice
from portal.rendering.csv_export import invoice_csv
from portal.rendering.pdf import invoice_html, render_pdf
from tests.factories import build_invoice

OUR = {
    "name": "Example Benefits LLC",
    "address": ["1 Main St", "Springfield"],
    "email": "billing@example.com",
    "remit_to": "Bank transfer to Example Benefits LLC\nReference: invoice {number}",
}


def set_customer(app, **values):
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        for name, value in values.items():
            setattr(customer, name, value)
        db.session.commit()


def pdf_of(app, invoice_id) -> PdfReader:
    with app.app_context():
        pdf = render_pdf(
            invoice_html(invoice_id, our_details=OUR), invoice_csv(invoice_id), filename_stem="x"
        )
    return PdfReader(io.BytesIO(pdf))


@pytest.fixture
def rendered(app, billing):
    set_customer(app, billing_address="Attn: Accounts Payable\n500 Harbor Blvd\nSeattle, WA 98104")
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


def plain(text):
    """Extracted text with the padding spaces between columns (and non-breaking ones) as one space."""
    return re.sub(r"[\s\u2000-\u200a\u202f]+", " ", text)


def test_pdf_when_rendered_shows_number_customer_and_our_details(rendered):
    text = plain(page_text(rendered[0]))
    assert "ACME-2026-10-1" in text and "Acme Inc" in text and "Example Benefits LLC" in text
    assert "October 2026" in text


def test_pdf_when_customer_has_billing_address_shows_it(rendered):
    text = plain(page_text(rendered[0]))
    assert "Attn: Accounts Payable" in text and "500 Harbor Blvd" in text and "Seattle, WA 98104" in text


def test_pdf_when_approved_shows_invoice_date_due_date_and_payment_terms(app, rendered):
    with app.app_context():
        invoice = db.session.scalar(select(Invoice))
        due = invoice.due_on
    text = plain(page_text(rendered[0]))
    assert due is not None
    assert f"Due date {due:%b} {due.day}, {due.year}" in text
    assert "Payment terms Net 30" in text
    assert "Invoice date" in text


def test_pdf_when_invoice_predates_due_dates_derives_due_date_from_terms(app, billing):
    set_customer(app, payment_terms_days=15, timezone="UTC")
    billing.add(120000, "2026-10-03")
    invoice_id = build_invoice(app)
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        invoice.due_on = None
        invoice.decided_at = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
        db.session.commit()
    text = plain(page_text(pdf_of(app, invoice_id)))
    assert "Due date Nov 17, 2026" in text and "Net 15" in text


def test_pdf_when_rendered_shows_remit_to_with_number_and_contact(rendered):
    text = plain(page_text(rendered[0]))
    assert "Reference: invoice ACME-2026-10-1" in text
    assert "billing@example.com" in text


def test_pdf_when_employee_has_two_lines_shows_their_subtotal(rendered):
    text = plain(page_text(rendered[0]))
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


def test_pdf_when_rendered_embeds_a_proportional_sans_font(rendered):
    reader = rendered[0]
    fonts = {
        str(font.get_object()["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert any(name.endswith("DejaVu-Sans") for name in fonts), fonts
    assert not any("Mono" in name for name in fonts), fonts


def test_pdf_when_rendered_twice_gives_identical_bytes(app, rendered):
    _, csv_bytes, first = rendered
    with app.app_context():
        invoice_id = db.session.scalar(select(Invoice.id))
        second = render_pdf(
            invoice_html(invoice_id, our_details=OUR), csv_bytes, filename_stem="ACME-2026-10-1"
        )
    assert second == first


def test_pdf_when_lines_were_held_for_dispute_lists_them_with_the_review_note(app, billing):
    billing.add(120000, "2026-10-03", employee="E1")
    disputed = billing.add(4500, "2026-10-09", employee="E2", partner="code-camp", expense_type="tutoring")
    invoice_id = build_invoice(app, approve=False)
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        disputes.flag_line(invoice, disputed, by=None, comment="Not ours")
        disputes.approve_undisputed(invoice, by=None)
        db.session.commit()
    text = plain(page_text(pdf_of(app, invoice_id)))
    assert "Lines held for review (1)" in text
    assert "under review and will be billed or dropped separately" in text
    assert "Person 2 (E2) Oct 9, 2026 Code Camp Course $45.00" in text
    assert "Total due (USD) $1,200.00" in text  # the held line is not in the total


def test_pdf_when_customer_is_german_formats_money_and_dates_for_de_de(app, billing):
    set_customer(app, locale="de_DE")
    billing.add(123456, "2026-10-03")
    invoice_id = build_invoice(app)
    text = plain(page_text(pdf_of(app, invoice_id)))
    assert "1.234,56 $" in text and "03.10.2026" in text and "Oktober 2026" in text


def test_pdf_when_total_is_negative_reads_as_a_credit_note(app, billing):
    billing.add(-50000, "2026-10-03")
    invoice_id = build_invoice(app)
    text = plain(page_text(pdf_of(app, invoice_id)))
    assert "Credit note" in text and "credit in your favour, nothing to pay" in text
    assert "Total credit" in text and "Due date" not in text


def test_pdf_when_many_lines_repeats_column_header_on_each_page_with_lines(app, billing):
    for day in range(1, 29):
        for _ in range(9):
            billing.add(1000 + day, f"2026-10-{day:02d}", employee="E1")
    invoice_id = build_invoice(app)
    reader = pdf_of(app, invoice_id)
    assert len(reader.pages) >= 3
    pages = [plain(page.extract_text()) for page in reader.pages]
    with_lines = [text for text in pages if re.search(r"Oct \d+, 2026 Tuition", text)]
    assert len(with_lines) >= 3
    assert all("Date Type Partner Description Amount" in text for text in with_lines)
    assert all(f"Page {n} of {len(pages)}" in text for n, text in enumerate(pages, 1))
