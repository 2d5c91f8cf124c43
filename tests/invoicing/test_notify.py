"""Invoice notifications received by a real local SMTP server."""

import datetime as dt
import email
from email import policy

from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import lifecycle
from portal.invoicing.notify import notify_awaiting_approval, notify_denied, send_reminders
from portal.jobs.workers import drain
from portal.models import Invoice, User
from tests.factories import build


def received(handler):
    return [email.message_from_bytes(e.content, policy=policy.default) for e in handler.envelopes]


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
