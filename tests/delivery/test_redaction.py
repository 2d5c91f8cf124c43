"""Webhook URLs with credentials (user:pass@host): shown and audited redacted, sent in full."""

import base64

import pytest
from sqlalchemy import select

from portal.delivery import attempt_delivery, deliver_invoice, new_webhook_secret, redacted_url, rotate_secret
from portal.delivery.manage import add_channel as add_channel_by_admin
from portal.extensions import db
from portal.models import AuditEvent, Customer, DeliveryChannel
from tests.factories import add_channel, delivery_for

CREDENTIALED = "https://billing:s3cr3t-pw@hooks.acme.example/in"


def _credentialed_channel(app, invoice_id) -> int:
    channel_id = add_channel(app, "webhook", target=CREDENTIALED, secret=new_webhook_secret())
    with app.app_context():
        deliver_invoice(invoice_id)
    return channel_id


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (CREDENTIALED, "https://***@hooks.acme.example/in"),
        ("http://user@10.0.0.1:8080/h?x=1", "http://***@10.0.0.1:8080/h?x=1"),
        (
            "https://hooks.acme.example/in?from=ap@acme.example",
            "https://hooks.acme.example/in?from=ap@acme.example",
        ),
    ],
)
def test_redacted_url_when_url_has_credentials_replaces_them(url, shown):
    assert redacted_url(url) == shown


def test_admin_customers_page_when_webhook_has_credentials_does_not_show_them(app, client, auth, invoice_id):
    _credentialed_channel(app, invoice_id)
    auth.login("admin@example.com")
    page = client.get("/admin/customers").data.decode()
    assert "hooks.acme.example" in page or "credentials hidden" in page
    assert "s3cr3t-pw" not in page


def test_admin_customers_page_when_webhook_has_credentials_shows_redacted_url(app, client, auth, invoice_id):
    _credentialed_channel(app, invoice_id)
    auth.login("admin@example.com")
    assert "https://***@hooks.acme.example/in" in client.get("/admin/customers").data.decode()


def test_add_channel_when_url_has_credentials_audits_redacted_url(app, invoice_id):
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        add_channel_by_admin(customer, "webhook", CREDENTIALED, by=None)
        db.session.commit()
        details = db.session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "delivery_channel.created")
        ).all()
    assert {"kind": "webhook", "target": "https://***@hooks.acme.example/in"} in details


def test_rotate_secret_when_url_has_credentials_audits_redacted_url(app, invoice_id):
    channel_id = _credentialed_channel(app, invoice_id)
    with app.app_context():
        rotate_secret(db.session.get(DeliveryChannel, channel_id), by=None)
        db.session.commit()
        details = db.session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == "delivery_channel.secret_rotated")
        )
    assert details["target"] == "https://***@hooks.acme.example/in"


def test_webhook_when_url_has_credentials_still_sends_them(app, invoice_id, receiver):
    receiver.secret = new_webhook_secret()
    url = receiver.url.replace("http://", "http://billing:s3cr3t-pw@")
    channel_id = add_channel(app, "webhook", target=url, secret=receiver.secret)
    with app.app_context():
        deliver_invoice(invoice_id)
        attempt_delivery(delivery_for(app, invoice_id, channel_id).id)
    (headers, _, _) = receiver.requests[0]
    assert headers["authorization"] == "Basic " + base64.b64encode(b"billing:s3cr3t-pw").decode()
