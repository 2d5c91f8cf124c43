"""Sending mail: through a real local SMTP server (aiosmtpd), into the outbox, and the templates."""

import email
from email import policy
from pathlib import Path

import pytest

from portal.core.mail import Attachment, MailError, render_mail, send_mail

URL = "http://portal.test/customer/invoices/42"
INVOICE = {
    "customer_name": "Acme Corp",
    "invoice_number": "INV-2026-10-0042",
    "period_label": "October 2026",
    "total": "$12,345.67",
    "url": URL,
}


def _received(handler):
    assert len(handler.envelopes) == 1
    envelope = handler.envelopes[0]
    return envelope, email.message_from_bytes(envelope.content, policy=policy.default)


def test_send_mail_when_smtp_configured_delivers_one_message_with_headers_and_both_parts(
    smtp_app, smtp_server
):
    _, handler = smtp_server
    with smtp_app.app_context():
        message_id = send_mail(
            ["pat@example.com", "Lee Example <lee@example.com>"],
            "Invoice ready",
            text="Plain body",
            html="<p>HTML body</p>",
        )
    envelope, msg = _received(handler)
    assert envelope.mail_from == "invoices@portal.test"
    assert envelope.rcpt_tos == ["pat@example.com", "lee@example.com"]
    assert msg["From"] == "Tuition Invoice Portal <invoices@portal.test>"
    assert msg["To"] == "pat@example.com, Lee Example <lee@example.com>"
    assert msg["Subject"] == "Invoice ready"
    assert msg["Message-ID"] == message_id
    assert msg["Date"]
    assert msg.get_body(("plain",)).get_content().strip() == "Plain body"
    assert msg.get_body(("html",)).get_content().strip() == "<p>HTML body</p>"


def test_send_mail_when_attachments_given_delivers_filename_and_bytes_intact(smtp_app, smtp_server):
    _, handler = smtp_server
    pdf = b"%PDF-1.7\n\x00\x01\xff binary \r\n bytes"
    csv = "Employee,Amount\nMüller,100.00\n".encode()
    with smtp_app.app_context():
        send_mail(
            ["pat@example.com"],
            "Invoice INV-1",
            text="Attached.",
            attachments=[
                Attachment("INV-1.pdf", pdf, "application/pdf"),
                Attachment("INV-1.csv", csv, "text/csv"),
            ],
        )
    _, msg = _received(handler)
    parts = {part.get_filename(): part for part in msg.iter_attachments()}
    assert set(parts) == {"INV-1.pdf", "INV-1.csv"}
    assert parts["INV-1.pdf"].get_content_type() == "application/pdf"
    assert parts["INV-1.pdf"].get_payload(decode=True) == pdf
    assert parts["INV-1.csv"].get_payload(decode=True) == csv


def test_send_mail_when_reply_to_given_sets_reply_to_header(smtp_app, smtp_server):
    _, handler = smtp_server
    with smtp_app.app_context():
        send_mail(["pat@example.com"], "Hello", text="Body", reply_to="billing@example.com")
    _, msg = _received(handler)
    assert msg["Reply-To"] == "billing@example.com"


def test_send_mail_when_no_mail_server_writes_eml_to_outbox(app, tmp_path):
    outbox = tmp_path / "outbox"
    app.config.update(MAIL_SERVER=None, MAIL_OUTBOX_DIR=str(outbox))
    with app.app_context():
        message_id = send_mail(["pat@example.com"], "Invoice ready ✓", text="Grüße, body", html="<p>hi</p>")
    files = list(outbox.iterdir())
    assert len(files) == 1
    assert files[0].suffix == ".eml"
    msg = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["Subject"] == "Invoice ready ✓"
    assert msg["Message-ID"] == message_id
    assert msg.get_body(("plain",)).get_content().strip() == "Grüße, body"


def test_send_mail_when_no_mail_server_names_file_without_user_input(app, tmp_path):
    outbox = tmp_path / "outbox"
    app.config.update(MAIL_SERVER=None, MAIL_OUTBOX_DIR=str(outbox))
    with app.app_context():
        send_mail(["../../evil@example.com"], "../../etc/passwd", text="x")
        send_mail(["../../evil@example.com"], "../../etc/passwd", text="x")
    names = sorted(p.name for p in outbox.iterdir())
    assert len(names) == 2
    for name in names:
        assert "evil" not in name and "passwd" not in name and "/" not in name
        assert Path(name).suffix == ".eml"


def test_send_mail_when_tls_required_but_not_offered_raises_with_hint(smtp_app, smtp_server):
    _, handler = smtp_server
    smtp_app.config["MAIL_USE_TLS"] = True
    with smtp_app.app_context(), pytest.raises(MailError, match="set MAIL_USE_TLS=false for a local relay"):
        send_mail(["pat@example.com"], "Hello", text="Body")
    assert handler.envelopes == []


@pytest.mark.parametrize(
    "address",
    ["pat@example.com\r\nBcc: victim@example.com", "pat@example.com\nBcc: victim@example.com"],
)
def test_send_mail_when_address_has_line_break_refuses(smtp_app, smtp_server, address):
    _, handler = smtp_server
    with smtp_app.app_context(), pytest.raises(MailError, match="line break"):
        send_mail([address], "Hello", text="Body")
    assert handler.envelopes == []


def test_send_mail_when_subject_has_line_break_refuses(smtp_app, smtp_server):
    with smtp_app.app_context(), pytest.raises(MailError, match="line break"):
        send_mail(["pat@example.com"], "Hello\r\nBcc: victim@example.com", text="Body")


def test_send_mail_when_one_item_holds_two_addresses_refuses(smtp_app, smtp_server):
    with smtp_app.app_context(), pytest.raises(MailError, match="not a single email address"):
        send_mail(["pat@example.com, victim@example.com"], "Hello", text="Body")


@pytest.mark.parametrize("to", [[], "pat@example.com"])
def test_send_mail_when_recipients_empty_or_bare_string_refuses(smtp_app, smtp_server, to):
    _, handler = smtp_server
    with smtp_app.app_context(), pytest.raises(MailError, match="non-empty list of recipients"):
        send_mail(to, "Hello", text="Body")
    assert handler.envelopes == []


def test_send_mail_when_server_unreachable_raises(app):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=1, MAIL_USE_TLS=False)
    with app.app_context(), pytest.raises(MailError, match="cannot send mail through 127.0.0.1:1"):
        send_mail(["pat@example.com"], "Hello", text="Body")


def test_send_mail_when_server_refuses_recipient_raises_with_server_message(smtp_app, smtp_server):
    with smtp_app.app_context(), pytest.raises(MailError, match="550 5.1.1 Mailbox does not exist"):
        send_mail(["nobody@reject.test"], "Hello", text="Body")


@pytest.mark.parametrize(
    ("template", "extra"),
    [
        ("invoice_awaiting_approval", {}),
        ("invoice_reminder", {"days_waiting": 9}),
        ("invoice_denied", {"reason": "Two courses billed twice", "denied_by": "pat@acme.example"}),
    ],
)
def test_render_mail_when_given_context_renders_number_and_link(app, template, extra):
    context = {**INVOICE, **extra}
    with app.app_context():
        text, html = render_mail(template, **context)
    assert "INV-2026-10-0042" in text and URL in text
    assert "INV-2026-10-0042" in html
    assert f'<a href="{URL}"' in html
    assert '<html lang="en">' in html
    assert "<h1" in html
    assert "<img" not in html
    for value in extra.values():
        assert str(value) in text and str(value) in html


def test_render_mail_when_name_holds_markup_escapes_html_only(app):
    context = {**INVOICE, "customer_name": "<b>Acme</b> & Co"}
    with app.app_context():
        text, html = render_mail("invoice_awaiting_approval", **context)
    assert "<b>Acme</b> & Co" in text
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; Co" in html
    assert "<b>Acme</b>" not in html
