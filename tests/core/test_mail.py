"""Sending mail: through a real local SMTP server (aiosmtpd), into the outbox, and the templates."""

import email
import re
from email import policy
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from portal import accounts
from portal.auth.password import INVITE, RESET, send_password_mail
from portal.core.mail import Attachment, MailError, render_mail, send_mail
from portal.extensions import db
from tests.factories import PASSWORD

URL = "http://portal.test/customer/invoices/42"
INVOICE = {
    "customer_name": "Acme Corp",
    "kind": "Invoice",
    "invoice_number": "INV-2026-10-0042",
    "period": "October 2026",
    "total": "$12,345.67",
    "due_on": "Dec 5, 2026",
    "payment_terms": "Net 30",
    "url": URL,
}
USER = SimpleNamespace(email="pat@acme.example")
# One context per email the portal sends, as its sender passes it.
EVERY_MAIL = {
    "invoice_awaiting_approval": INVOICE,
    "invoice_reminder": {**INVOICE, "days_waiting": 9},
    "invoice_denied": {**INVOICE, "reason": "Two courses billed twice", "denied_by": "pat@acme.example"},
    "invoice_delivered": {
        **INVOICE,
        "credit": False,
        "attachments": ["INV-2026-10-0042.pdf", "INV-2026-10-0042.csv"],
        "remit_to": ["Bank transfer to Brightpath", "Reference: invoice INV-2026-10-0042"],
    },
    "password_invite": {"user": USER, "url": URL, "days": 7, "hours": 168, "invited_by": "Jordan Admin"},
    "password_reset": {"user": USER, "url": URL, "days": 0, "hours": 2, "invited_by": ""},
}
BRAND = {"COMPANY_NAME": "Brightpath Learning", "COMPANY_ADDRESS": "1 Learning Way\nSpringfield, IL 62701"}


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


@pytest.mark.parametrize("template", ["invoice_awaiting_approval", "invoice_reminder", "invoice_delivered"])
def test_render_mail_when_invoice_mail_shows_amount_period_and_due_date_in_both_parts(app, template):
    with app.app_context():
        text, html = render_mail(template, **EVERY_MAIL[template])
    for fact in ("$12,345.67", "October 2026", "Dec 5, 2026", "INV-2026-10-0042"):
        assert fact in text and fact in html
    assert re.search(r'style="[^"]*font-size:32px[^"]*">\$12,345\.67<', html)  # the amount stands out


@pytest.mark.parametrize("template", sorted(EVERY_MAIL))
def test_render_mail_when_any_mail_carries_brand_heading_button_and_plain_address(app, template):
    app.config.update(BRAND)
    with app.app_context():
        text, html = render_mail(template, **EVERY_MAIL[template])
    assert html.count("Brightpath Learning") >= 2  # the wordmark band and the footer
    assert "<h1" in html and "<img" not in html
    button = html.split(f'<a href="{URL}"', 1)[0].rsplit("<table", 1)[1]
    assert 'role="presentation"' in button and 'bgcolor="#1d4ed8"' in button
    assert html.count(f'href="{URL}"') == 2  # the button, then the plain address under it
    assert f">{URL}</a>" in html
    assert text.startswith("Brightpath Learning\n") and URL in text


@pytest.mark.parametrize("template", sorted(EVERY_MAIL))
def test_render_mail_when_any_mail_footer_names_us_our_address_and_why_in_both_parts(app, template):
    app.config.update(BRAND)
    with app.app_context():
        text, html = render_mail(template, **EVERY_MAIL[template])
    for part in (text, html):
        assert "Springfield, IL 62701" in part
        assert "You receive this email because" in part


class _TextColours(HTMLParser):
    """Each piece of visible text with the colour and background it is drawn in (inline styles)."""

    VOID = {"br", "meta", "img", "hr", "input", "link"}

    def __init__(self):
        super().__init__()
        self.stack = [("#000000", "#ffffff", False)]
        self.texts = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attrs = dict(attrs)
        style = dict(
            (k.strip(), v.strip())
            for k, _, v in (d.partition(":") for d in (attrs.get("style") or "").split(";"))
        )
        colour, background, hidden = self.stack[-1]
        background = style.get("background-color", attrs.get("bgcolor", background))
        hidden = hidden or tag in ("head", "title") or style.get("display") == "none"
        self.stack.append((style.get("color", colour), background, hidden))

    def handle_endtag(self, tag):
        if tag not in self.VOID and len(self.stack) > 1:
            self.stack.pop()

    def handle_data(self, data):
        colour, background, hidden = self.stack[-1]
        if data.strip() and not hidden:
            self.texts.append((data.strip(), colour, background))


def _contrast(a: str, b: str) -> float:
    def luminance(colour):
        rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted([luminance(a), luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("template", sorted(EVERY_MAIL))
def test_render_mail_when_any_mail_every_text_meets_wcag_aa_contrast(app, template):
    with app.app_context():
        _, html = render_mail(template, **EVERY_MAIL[template])
    parser = _TextColours()
    parser.feed(html)
    assert parser.texts
    for text, colour, background in parser.texts:
        assert re.fullmatch(r"#[0-9a-f]{6}", colour) and re.fullmatch(r"#[0-9a-f]{6}", background), text
        assert _contrast(colour, background) >= 4.5, f"{text!r}: {colour} on {background}"


def _password_mail(app, smtp_server, purpose):
    _, handler = smtp_server
    app.config.update(BRAND)
    with app.app_context():
        user = accounts.create_user(email="pat@acme.example", password=PASSWORD, role="admin", name="Pat")
        db.session.commit()
        send_password_mail(user, purpose, invited_by="Jordan Admin")
    (envelope,) = handler.envelopes
    return email.message_from_bytes(envelope.content, policy=policy.default)


@pytest.mark.parametrize("purpose", [INVITE, RESET])
def test_password_mail_when_sent_is_multipart_alternative_with_brand_and_link_in_both(
    smtp_app, smtp_server, purpose
):
    message = _password_mail(smtp_app, smtp_server, purpose)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    (link,) = set(re.findall(r"http://\S+/set-password/[\w.-]+", text))
    assert f'href="{link}"' in html
    assert "Brightpath Learning" in text and "Brightpath Learning" in html


def test_render_mail_when_name_holds_markup_escapes_html_only(app):
    context = {**INVOICE, "customer_name": "<b>Acme</b> & Co"}
    with app.app_context():
        text, html = render_mail("invoice_awaiting_approval", **context)
    assert "<b>Acme</b> & Co" in text
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; Co" in html
    assert "<b>Acme</b>" not in html
