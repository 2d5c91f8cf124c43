"""Email delivery through a real local SMTP server, and the archive copy in the storage backend."""

import email
import email.policy
import hashlib
import io

from sqlalchemy import select

from portal.core import formatting
from portal.core.storage import get_storage
from portal.delivery import archive_key, attempt_delivery, deliver_invoice, redeliver
from portal.extensions import db
from portal.jobs.workers import drain
from portal.models import ChannelKind, Customer, DeliveryChannel, DeliveryStatus, Invoice
from tests.factories import CSV, PDF, add_channel, delivery_for


def deliver_by(app, invoice_id, channel_id):
    with app.app_context():
        deliver_invoice(invoice_id)
    delivery_id = delivery_for(app, invoice_id, channel_id).id
    with app.app_context():
        return attempt_delivery(delivery_id)


def archive_channel_id(app, code="ACME"):
    with app.app_context():
        return db.session.scalar(
            select(DeliveryChannel.id).where(DeliveryChannel.kind == ChannelKind.ARCHIVE)
        )


def test_email_delivery_sends_one_message_with_both_files_byte_identical(smtp_app, smtp_server, invoice_id):
    _, collector = smtp_server
    channel_id = add_channel(smtp_app, "email")
    result = deliver_by(smtp_app, invoice_id, channel_id)
    (envelope,) = collector.envelopes
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    files = {part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()}
    assert result["status"] == "succeeded"
    assert files == {"ACME-2026-10-1.pdf": PDF, "ACME-2026-10-1.csv": CSV}


def _delivered(smtp_app, smtp_server, invoice_id):
    _, collector = smtp_server
    deliver_by(smtp_app, invoice_id, add_channel(smtp_app, "email"))
    (envelope,) = collector.envelopes
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def test_email_delivery_message_has_text_and_html_alternatives_besides_the_files(
    smtp_app, smtp_server, invoice_id
):
    message = _delivered(smtp_app, smtp_server, invoice_id)
    (body,) = [part for part in message.iter_parts() if part.get_content_type() == "multipart/alternative"]
    assert [part.get_content_type() for part in body.iter_parts()] == ["text/plain", "text/html"]


def test_email_delivery_both_parts_show_amount_due_date_and_link_to_the_invoice(
    smtp_app, smtp_server, invoice_id
):
    smtp_app.config.update(PORTAL_BASE_URL="https://portal.test", COMPANY_NAME="Brightpath Learning")
    message = _delivered(smtp_app, smtp_server, invoice_id)
    with smtp_app.app_context():
        due = formatting.date(db.session.get(Invoice, invoice_id).due_on)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = f"https://portal.test/customer/invoices/{invoice_id}"
    for part in (text, html):
        assert "$12.34" in part and due in part and "ACME-2026-10-1" in part and link in part
    assert f'<a href="{link}"' in html and "Brightpath Learning" in html


def test_email_delivery_when_customer_is_german_formats_amount_in_german(smtp_app, smtp_server, invoice_id):
    with smtp_app.app_context():
        db.session.scalar(select(Customer).where(Customer.code == "ACME")).locale = "de_DE"
        db.session.commit()
    message = _delivered(smtp_app, smtp_server, invoice_id)
    for kind in ("plain", "html"):
        assert "12,34\u00a0$" in message.get_body((kind,)).get_content()


def test_email_delivery_without_addresses_goes_to_active_contacts(smtp_app, smtp_server, invoice_id):
    _, collector = smtp_server
    channel_id = add_channel(smtp_app, "email")
    deliver_by(smtp_app, invoice_id, channel_id)
    assert sorted(collector.envelopes[0].rcpt_tos) == ["contact@acme.example", "second@acme.example"]


def test_email_delivery_to_channel_addresses_when_set(smtp_app, smtp_server, invoice_id):
    _, collector = smtp_server
    channel_id = add_channel(smtp_app, "email", target="ap@acme.example, billing@acme.example")
    deliver_by(smtp_app, invoice_id, channel_id)
    assert sorted(collector.envelopes[0].rcpt_tos) == ["ap@acme.example", "billing@acme.example"]


def test_deliver_invoice_gives_customer_without_channels_an_archive_channel(app, invoice_id):
    with app.app_context():
        deliver_invoice(invoice_id)
        kinds = db.session.scalars(select(DeliveryChannel.kind)).all()
    assert kinds == [ChannelKind.ARCHIVE]


def test_archive_writes_both_files_under_documented_keys_with_matching_sha256(app, invoice_id):
    with app.app_context():
        deliver_invoice(invoice_id)
    result = deliver_by(app, invoice_id, archive_channel_id(app))
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        keys = [archive_key(invoice, kind) for kind in ("pdf", "csv")]
        stored = [get_storage().open(key).read() for key in keys]
    assert result["status"] == "succeeded"
    assert keys == ["archive/ACME/2026/10/ACME-2026-10-1.pdf", "archive/ACME/2026/10/ACME-2026-10-1.csv"]
    assert [hashlib.sha256(b).hexdigest() for b in stored] == [
        hashlib.sha256(PDF).hexdigest(),
        hashlib.sha256(CSV).hexdigest(),
    ]


def test_archive_when_stored_document_changed_fails_permanently(app, invoice_id):
    with app.app_context():
        get_storage().put(f"invoices/{invoice_id}/pdf", io.BytesIO(b"tampered"))
        deliver_invoice(invoice_id)
    result = deliver_by(app, invoice_id, archive_channel_id(app))
    assert result["status"] == "failed" and "differs from the document's" in result["error"]
    assert delivery_for(app, invoice_id, archive_channel_id(app)).status == DeliveryStatus.FAILED


def test_archive_when_stored_document_changed_leaves_nothing_at_archive_key(app, invoice_id):
    with app.app_context():
        get_storage().put(f"invoices/{invoice_id}/pdf", io.BytesIO(b"tampered"))
        deliver_invoice(invoice_id)
    deliver_by(app, invoice_id, archive_channel_id(app))
    with app.app_context():
        key = archive_key(db.session.get(Invoice, invoice_id), "pdf")
        assert get_storage().exists(key) is False


def test_archive_redelivered_after_document_changed_keeps_the_good_copy(app, invoice_id):
    with app.app_context():
        deliver_invoice(invoice_id)
    deliver_by(app, invoice_id, archive_channel_id(app))  # archived while intact
    with app.app_context():
        get_storage().put(f"invoices/{invoice_id}/pdf", io.BytesIO(b"tampered"))
        invoice = db.session.get(Invoice, invoice_id)
        redeliver(invoice, by=None, include_succeeded=True)
        db.session.commit()
    drain(app, queues=["delivery"])
    with app.app_context():
        assert get_storage().open(archive_key(db.session.get(Invoice, invoice_id), "pdf")).read() == PDF
