"""Invoice notifications received by a real local SMTP server."""

import datetime as dt
import email
from email import policy

from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import lifecycle
from portal.invoicing.notify import (
    invoice_mail_context,
    notify_awaiting_approval,
    notify_denied,
    send_reminders,
)
from portal.jobs.workers import drain
from portal.models import Customer, Invoice, User
from tests.factories import build

NBSP = "\u00a0"


def received(handler):
    return [email.message_from_bytes(e.content, policy=policy.default) for e in handler.envelopes]


def parts(message):
    """(text, html) of a message that must be multipart/alternative; Babel's no-break spaces as spaces."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text.replace(NBSP, " "), html.replace(NBSP, " ")


def _set_locale(app, locale):
    with app.app_context():
        db.session.scalar(select(Customer).where(Customer.code == "ACME")).locale = locale
        db.session.commit()


def _invoice_id(app):
    with app.app_context():
        return db.session.scalar(select(Invoice.id))


def test_awaiting_approval_mail_reaches_every_contact_with_link(app, billing, smtp_app, smtp_server):
    _, handler = smtp_server
    billing.add(123450, "2026-10-03")
    build(app)
    drain(app)  # the notification job recorded with the invoice
    (message,) = received(handler)
    assert sorted(handler.envelopes[0].rcpt_tos) == ["contact@acme.example", "second@acme.example"]
    assert message["Subject"] == "Invoice ACME-2026-10-1 for October 2026 awaits your approval"
    body = message.get_body(("plain",)).get_content()
    assert "$1,234.50" in body and f"/customer/invoices/{_invoice_id(app)}" in body


def test_awaiting_approval_when_already_decided_sends_nothing(app, billing, smtp_app, smtp_server):
    _, handler = smtp_server
    billing.add(100, "2026-10-03")
    build(app)
    with app.app_context():
        invoice = db.session.get(Invoice, _invoice_id(app))
        lifecycle.approve(invoice, by=None)
        db.session.commit()
        assert notify_awaiting_approval(invoice.id)["sent"] == 0
    assert handler.envelopes == []


def test_reminder_after_configured_days_once(app, billing, smtp_app, smtp_server):
    _, handler = smtp_server
    billing.add(100, "2026-10-03")
    build(app)
    smtp_app.config["INVOICE_REMINDER_DAYS"] = 3
    with app.app_context():
        invoice = db.session.get(Invoice, _invoice_id(app))
        later = invoice.created_at + dt.timedelta(days=4)
        assert send_reminders(now=invoice.created_at + dt.timedelta(days=2)) == 0
        assert send_reminders(now=later) == 1
        assert send_reminders(now=later + dt.timedelta(hours=1)) == 0
    (message,) = received(handler)
    assert message["Subject"] == "Reminder: invoice ACME-2026-10-1 has waited 4 days for your approval"


def test_denial_is_told_to_admins_with_reason(app, billing, smtp_app, smtp_server):
    _, handler = smtp_server
    billing.add(100, "2026-10-03")
    build(app)
    with app.app_context():
        invoice = db.session.get(Invoice, _invoice_id(app))
        contact = db.session.scalar(select(User).where(User.email == "contact@acme.example"))
        lifecycle.deny(invoice, by=contact, reason="Unknown employee E1")
        db.session.commit()
        notify_denied(invoice.id)
    (message,) = received(handler)
    assert handler.envelopes[0].rcpt_tos == ["admin@example.com"]
    assert "Unknown employee E1" in message.get_body(("plain",)).get_content()
    assert "contact@acme.example" in message.get_body(("plain",)).get_content()


def test_without_smtp_mail_lands_in_outbox(app, billing, tmp_path):
    billing.add(100, "2026-10-03")
    build(app)
    drain(app)
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    assert b"ACME-2026-10-1" in files[0].read_bytes()


def test_awaiting_approval_mail_is_text_and_html_with_amount_link_and_brand(
    app, billing, smtp_app, smtp_server
):
    _, handler = smtp_server
    smtp_app.config.update(COMPANY_NAME="Brightpath Learning", PORTAL_BASE_URL="https://portal.test")
    billing.add(123450, "2026-10-03")
    build(app)
    drain(app)
    text, html = parts(received(handler)[0])
    link = f"https://portal.test/customer/invoices/{_invoice_id(app)}"
    assert "$1,234.50" in text and link in text
    assert "$1,234.50" in html and f'<a href="{link}"' in html
    assert "Brightpath Learning" in html and "ACME-2026-10-1" in html


def test_awaiting_approval_mail_when_customer_is_german_shows_amount_and_period_in_german(
    app, billing, smtp_app, smtp_server
):
    _, handler = smtp_server
    _set_locale(app, "de_DE")
    billing.add(123456, "2026-10-03", currency="EUR")
    build(app)
    drain(app)
    text, html = parts(received(handler)[0])
    for part in (text, html):
        assert "1.234,56 €" in part and "Oktober 2026" in part
        assert "$" not in part


def test_reminder_mail_is_text_and_html_with_amount_and_link(app, billing, smtp_app, smtp_server):
    _, handler = smtp_server
    _set_locale(app, "fr_FR")
    billing.add(123456, "2026-10-03", currency="EUR")
    build(app)
    with app.app_context():
        invoice = db.session.get(Invoice, _invoice_id(app))
        send_reminders(now=invoice.created_at + dt.timedelta(days=30))
    text, html = parts(received(handler)[0])
    link = f"/customer/invoices/{_invoice_id(app)}"
    for part in (text, html):
        assert "1 234,56 €" in part.replace("\u202f", " ") and link in part


def test_denial_mail_is_text_and_html_with_reason_amount_and_admin_link(app, billing, smtp_app, smtp_server):
    _, handler = smtp_server
    smtp_app.config["PORTAL_BASE_URL"] = "https://portal.test"
    billing.add(123450, "2026-10-03")
    build(app)
    with app.app_context():
        invoice = db.session.get(Invoice, _invoice_id(app))
        contact = db.session.scalar(select(User).where(User.email == "contact@acme.example"))
        lifecycle.deny(invoice, by=contact, reason="Unknown employee <E1>")
        db.session.commit()
        notify_denied(invoice.id)
    text, html = parts(received(handler)[0])
    link = f"https://portal.test/admin/invoices/{_invoice_id(app)}"
    assert "Unknown employee <E1>" in text and "Unknown employee &lt;E1&gt;" in html
    assert "$1,234.50" in text and "$1,234.50" in html
    assert link in text and f'<a href="{link}"' in html


def test_invoice_mail_context_when_approved_formats_total_period_and_due_date_for_customer_locale(app):
    customer = Customer(name="Acme GmbH", code="ACME", locale="de_DE", payment_terms_days=30)
    invoice = Invoice(
        id=7,
        number="ACME-2026-10-1",
        customer=customer,
        period_start=dt.date(2026, 10, 1),
        total_minor=123456,
        currency="EUR",
        supplement=False,
        due_on=dt.date(2026, 12, 5),
    )
    app.config["PORTAL_BASE_URL"] = "https://portal.test/"
    with app.app_context():
        context = invoice_mail_context(invoice)
    assert context["total"].replace(NBSP, " ") == "1.234,56 €"
    assert context["period"].replace(NBSP, " ") == "Oktober 2026"
    assert context["due_on"] == "05.12.2026"
    assert context["payment_terms"] == "Net 30"
    assert context["url"] == "https://portal.test/customer/invoices/7"
