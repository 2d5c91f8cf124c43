"""Admins configure delivery channels and redeliver from the pages."""

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Customer, DeliveryChannel


def _acme(app):
    with app.app_context():
        return db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))


def test_admin_adds_webhook_channel_and_sees_secret_once(app, client, auth, billing):
    auth.login("admin@example.com")
    page = client.post(
        f"/admin/customers/{_acme(app)}/channels",
        data={"kind": "webhook", "target": "https://billing.acme.example/hooks"},
        follow_redirects=True,
    ).data.decode()
    assert "Added webhook channel for ACME. Signing secret (shown once" in page and "whsec_" in page
    assert "whsec_" not in client.get("/admin/customers").data.decode()
    with app.app_context():
        assert (
            db.session.scalar(select(AuditEvent).where(AuditEvent.action == "delivery_channel.created"))
            is not None
        )


def test_admin_add_webhook_with_plain_http_explains(app, client, auth, billing):
    auth.login("admin@example.com")
    response = client.post(
        f"/admin/customers/{_acme(app)}/channels", data={"kind": "webhook", "target": "http://x.example/h"}
    )
    assert response.status_code == 400
    assert 'class="field-error">webhooks must use https' in response.data.decode()


def test_admin_add_email_channel_with_bad_address_explains(app, client, auth, billing):
    auth.login("admin@example.com")
    page = client.post(
        f"/admin/customers/{_acme(app)}/channels",
        data={"kind": "email", "target": "ap@acme.example, nope"},
        follow_redirects=True,
    ).data.decode()
    assert "&#39;nope&#39; is not a valid email address" in page


def test_admin_disables_channel(app, client, auth, billing):
    auth.login("admin@example.com")
    client.post(f"/admin/customers/{_acme(app)}/channels", data={"kind": "archive"})
    with app.app_context():
        channel_id = db.session.scalar(select(DeliveryChannel.id))
    client.post(f"/admin/channels/{channel_id}/toggle")
    with app.app_context():
        assert db.session.get(DeliveryChannel, channel_id).enabled is False


def test_customer_cannot_manage_channels(client, auth, billing):
    auth.login("contact@acme.example")
    assert client.get("/admin/customers").status_code == 403
