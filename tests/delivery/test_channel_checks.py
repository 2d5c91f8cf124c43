"""A webhook the portal would refuse to call is refused when an admin adds it, with the same message."""

import pytest
from sqlalchemy import func, select

from portal.delivery.manage import ChannelError, add_channel
from portal.delivery.outbound import RefusedURL, check_url
from portal.extensions import db
from portal.models import AuditEvent, Customer, DeliveryChannel

INTERNAL = [
    "https://127.0.0.1/hooks",
    "https://10.1.2.3:8443/hooks",
    "https://169.254.169.254/latest/meta-data",
]


def _acme(app):
    with app.app_context():
        return db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))


def _channels(app):
    with app.app_context():
        return db.session.scalar(select(func.count(DeliveryChannel.id)))


@pytest.mark.parametrize("url", INTERNAL)
def test_admin_add_webhook_when_address_internal_is_refused_with_message(app, client, auth, billing, url):
    app.config["WEBHOOK_ALLOWLIST"] = []
    auth.login("admin@example.com")
    response = client.post(f"/admin/customers/{_acme(app)}/channels", data={"kind": "webhook", "target": url})
    assert response.status_code == 400
    page = response.data.decode()
    assert 'class="field-error">webhook host' in page
    assert "a private or reserved address; add it to WEBHOOK_ALLOWLIST if it is meant to be called" in page
    assert _channels(app) == 0


@pytest.mark.parametrize("url", INTERNAL)
def test_admin_add_webhook_when_internal_address_allowlisted_is_accepted(app, client, auth, billing, url):
    app.config["WEBHOOK_ALLOWLIST"] = ["127.0.0.1", "10.0.0.0/8", "169.254.0.0/16"]
    auth.login("admin@example.com")
    response = client.post(f"/admin/customers/{_acme(app)}/channels", data={"kind": "webhook", "target": url})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(DeliveryChannel.target)) == url


def test_add_channel_when_host_resolves_internal_refuses_as_sending_would(app, billing):
    app.config["WEBHOOK_ALLOWLIST"] = []
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        with pytest.raises(ChannelError) as refused:
            add_channel(customer, "webhook", "https://localhost:9/hooks", by=None)
        with pytest.raises(RefusedURL) as at_send:
            check_url("https://localhost:9/hooks", [])
        db.session.rollback()
        assert (
            db.session.scalar(select(AuditEvent).where(AuditEvent.action == "delivery_channel.created"))
            is None
        )
    assert str(refused.value) == f"target: {at_send.value}"


def test_add_channel_when_host_does_not_resolve_yet_is_accepted(app, billing):
    app.config["WEBHOOK_ALLOWLIST"] = []
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        _channel, secret = add_channel(customer, "webhook", "https://hooks.not-yet.invalid/in", by=None)
        db.session.commit()
        assert db.session.scalar(select(DeliveryChannel.target)) == "https://hooks.not-yet.invalid/in"
    assert secret.startswith("whsec_")
