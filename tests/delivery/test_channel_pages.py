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


def test_admin_add_plain_http_webhook_when_address_in_allowlisted_network_is_accepted(
    app, client, auth, billing
):
    app.config["WEBHOOK_ALLOWLIST"] = ["10.0.0.0/8"]
    auth.login("admin@example.com")
    response = client.post(
        f"/admin/customers/{_acme(app)}/channels",
        data={"kind": "webhook", "target": "http://10.1.2.3:8080/h"},
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(DeliveryChannel.target)) == "http://10.1.2.3:8080/h"


def test_admin_add_plain_http_webhook_when_address_outside_allowlisted_network_explains(
    app, client, auth, billing
):
    app.config["WEBHOOK_ALLOWLIST"] = ["192.168.0.0/16"]
    auth.login("admin@example.com")
    response = client.post(
        f"/admin/customers/{_acme(app)}/channels", data={"kind": "webhook", "target": "http://10.1.2.3/h"}
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


def _webhook_channel(app):
    from portal.delivery import new_webhook_secret

    with app.app_context():
        channel = DeliveryChannel(
            customer_id=_acme(app),
            kind="webhook",
            target="https://h.acme.example/x",
            secret=new_webhook_secret(),
        )
        db.session.add(channel)
        db.session.commit()
        return channel.id, channel.secret


def test_admin_rotates_secret_with_grace_and_sees_until_when_old_signs(app, client, auth, billing):
    channel_id, old = _webhook_channel(app)
    auth.login("admin@example.com")
    page = client.get("/admin/customers").data.decode()
    assert "old secret still signs for 24 h" in page and "old secret stops now (leaked)" in page
    page = client.post(
        f"/admin/channels/{channel_id}/rotate", data={"after_rotation": "grace"}, follow_redirects=True
    ).data.decode()
    assert "New signing secret (shown once, give it to the customer): whsec_" in page
    assert "UTC deliveries are signed with the old secret too." in page
    assert "old secret also signs until" in page
    with app.app_context():
        channel = db.session.get(DeliveryChannel, channel_id)
        assert channel.previous_secret == old and channel.secret != old


def test_admin_rotates_leaked_secret_and_old_stops_at_once(app, client, auth, billing):
    channel_id, _ = _webhook_channel(app)
    auth.login("admin@example.com")
    page = client.post(
        f"/admin/channels/{channel_id}/rotate", data={"after_rotation": "now"}, follow_redirects=True
    ).data.decode()
    assert "The old secret no longer signs anything." in page and "old secret also signs until" not in page
    with app.app_context():
        assert db.session.get(DeliveryChannel, channel_id).previous_secret is None


def test_admin_rotate_without_a_choice_explains_and_changes_nothing(app, client, auth, billing):
    channel_id, old = _webhook_channel(app)
    auth.login("admin@example.com")
    page = client.post(f"/admin/channels/{channel_id}/rotate", data={}, follow_redirects=True).data.decode()
    assert "Choose whether the old secret keeps signing for a while or stops now." in page
    with app.app_context():
        assert db.session.get(DeliveryChannel, channel_id).secret == old
