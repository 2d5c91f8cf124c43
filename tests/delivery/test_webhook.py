"""Webhook delivery: signed per Standard Webhooks, 2xx succeeds, 5xx retries, 410 disables, SSRF refused."""

import datetime as dt
import socket

import pytest
from rq.job import Job
from sqlalchemy import select

from portal import jobs
from portal.delivery import DeliveryRetry, attempt_delivery, deliver_invoice, new_webhook_secret
from portal.extensions import db
from portal.jobs.workers import drain
from portal.models import (
    AuditEvent,
    Delivery,
    DeliveryAttempt,
    DeliveryChannel,
    DeliveryStatus,
    JobRecord,
    JobStatus,
)
from portal.models.base import utcnow
from tests.delivery.webhook_spec import verify_from_spec
from tests.factories import add_channel, delivery_for


@pytest.fixture
def webhook(app, invoice_id, receiver):
    """A webhook channel pointing at the receiver, its delivery created (not yet attempted)."""
    receiver.secret = new_webhook_secret()
    channel_id = add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    with app.app_context():
        deliver_invoice(invoice_id)
    return delivery_for(app, invoice_id, channel_id).id


def run_attempt(app, delivery_id):
    with app.app_context():
        return attempt_delivery(delivery_id)


def delivery_for_id(app, delivery_id):
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        db.session.expunge(delivery)
        return delivery


def attempts(app, delivery_id):
    with app.app_context():
        rows = db.session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        ).all()
        db.session.expunge_all()
        return rows


def test_webhook_when_signed_is_accepted_and_delivery_succeeds(app, receiver, webhook):
    result = run_attempt(app, webhook)
    (headers, _, problem) = receiver.requests[0]
    assert problem is None and headers["webhook-id"] == f"msg_{webhook}"
    assert result["status"] == "succeeded"
    assert delivery_for_id(app, webhook).status == DeliveryStatus.SUCCEEDED
    assert [(a.ok, a.status_code) for a in attempts(app, webhook)] == [(True, 200)]


def test_webhook_payload_describes_invoice_and_documents(app, receiver, webhook, invoice_id):
    run_attempt(app, webhook)
    (payload,) = receiver.payloads
    data = payload["type"], payload["data"]["number"], payload["data"]["total"], payload["data"]["currency"]
    assert data == ("invoice.approved", "ACME-2026-10-1", "12.34", "USD")
    docs = {d["kind"]: d for d in payload["data"]["documents"]}
    assert (
        docs["pdf"]["download_url"] == f"http://127.0.0.1:5000/customer/invoices/{invoice_id}/documents/pdf"
    )
    assert len(docs["csv"]["sha256"]) == 64 and payload["data"]["line_count"] == 1


def test_webhook_when_receiver_answers_500_records_attempt_and_raises_for_retry(app, receiver, webhook):
    receiver.answer = 500
    with pytest.raises(DeliveryRetry, match="HTTP 500"):
        run_attempt(app, webhook)
    assert [(a.ok, a.status_code) for a in attempts(app, webhook)] == [(False, 500)]
    assert delivery_for_id(app, webhook).status == DeliveryStatus.PENDING


def test_webhook_retry_keeps_message_id_and_succeeds(app, receiver, webhook):
    receiver.answer = 500
    with pytest.raises(DeliveryRetry):
        run_attempt(app, webhook)
    receiver.answer = 200
    run_attempt(app, webhook)
    ids = [headers["webhook-id"] for headers, _, _ in receiver.requests]
    assert ids == [f"msg_{webhook}"] * 2
    assert delivery_for_id(app, webhook).status == DeliveryStatus.SUCCEEDED


def test_webhook_when_500_in_queue_job_is_scheduled_for_retry(app, receiver, invoice_id):
    receiver.secret = new_webhook_secret()
    receiver.answer = 500
    channel_id = add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    with app.app_context():
        deliver_invoice(invoice_id)
    drain(app, queues=["delivery"])
    delivery_id = delivery_for(app, invoice_id, channel_id).id
    with app.app_context():
        (record,) = [
            r
            for r in db.session.scalars(select(JobRecord).where(JobRecord.func.like("%attempt_delivery")))
            if r.args == [delivery_id]
        ]
        assert record.status == JobStatus.RETRYING
        assert Job.fetch(record.id, connection=jobs.get_connection()).get_status() == "scheduled"
    assert len(receiver.requests) == 1


def test_webhook_when_410_disables_channel_and_fails_without_retry(app, receiver, webhook):
    receiver.answer = 410
    result = run_attempt(app, webhook)  # returns instead of raising: no retry
    delivery = delivery_for_id(app, webhook)
    assert result["status"] == "failed" and delivery.status == DeliveryStatus.FAILED
    with app.app_context():
        channel = db.session.get(DeliveryChannel, delivery.channel_id)
        assert channel.enabled is False and "410" in channel.disabled_reason


def test_webhook_when_url_is_loopback_and_not_allowlisted_is_refused(app, receiver, webhook):
    app.config["WEBHOOK_ALLOWLIST"] = []
    result = run_attempt(app, webhook)
    (attempt,) = attempts(app, webhook)
    assert receiver.requests == []
    assert result["status"] == "failed" and "127.0.0.1, a private or reserved address" in attempt.error


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/hook"])
def test_webhook_when_scheme_is_not_http_is_refused(app, invoice_id, url):
    channel_id = add_channel(app, "webhook", target=url, secret=new_webhook_secret())
    with app.app_context():
        deliver_invoice(invoice_id)
    delivery_id = delivery_for(app, invoice_id, channel_id).id
    result = run_attempt(app, delivery_id)
    (attempt,) = attempts(app, delivery_id)
    assert result["status"] == "failed" and "scheme" in attempt.error and "not allowed" in attempt.error


def _rotate(app, delivery_id, **kwargs):
    from portal.delivery import rotate_secret

    with app.app_context():
        channel = db.session.get(DeliveryChannel, delivery_for_id(app, delivery_id).channel_id)
        new = rotate_secret(channel, by=None, **kwargs)
        db.session.commit()
        return new, channel.id


def test_rotate_secret_with_no_grace_old_secret_stops_signing_at_once(app, receiver, webhook):
    old = receiver.secret
    new, _ = _rotate(app, webhook, grace=dt.timedelta(0))
    assert new != old and new.startswith("whsec_")
    with pytest.raises(DeliveryRetry, match="HTTP 401"):  # the receiver still holds the old secret
        run_attempt(app, webhook)
    headers, body, problem = receiver.requests[0]
    assert problem == "no matching signature" and verify_from_spec(new, headers, body) is None
    assert len(headers["webhook-signature"].split(" ")) == 1


def test_rotate_secret_by_default_signs_with_both_secrets_during_grace(app, receiver, webhook):
    """A receiver that has not switched yet keeps accepting; one that has switched accepts too."""
    old = receiver.secret
    new, _ = _rotate(app, webhook)
    assert run_attempt(app, webhook)["status"] == "succeeded"  # verified with the old secret
    headers, body, problem = receiver.requests[0]
    assert problem is None
    assert verify_from_spec(new, headers, body) is None and verify_from_spec(old, headers, body) is None
    assert len(headers["webhook-signature"].split(" ")) == 2
    with app.app_context():
        stmt = select(DeliveryChannel).where(DeliveryChannel.previous_secret.is_not(None))
        channel = db.session.scalar(stmt)
        left = channel.previous_secret_until - utcnow()
    assert dt.timedelta(hours=23, minutes=59) < left <= dt.timedelta(hours=24)  # WEBHOOK_SECRET_GRACE_HOURS


def test_rotate_secret_after_grace_old_secret_no_longer_signs(app, receiver, webhook):
    old = receiver.secret
    new, channel_id = _rotate(app, webhook, grace=dt.timedelta(hours=1))
    with app.app_context():
        channel = db.session.get(DeliveryChannel, channel_id)
        channel.previous_secret_until = utcnow() - dt.timedelta(seconds=1)  # the hour has passed
        db.session.commit()
    with pytest.raises(DeliveryRetry, match="HTTP 401"):
        run_attempt(app, webhook)
    headers, body, _ = receiver.requests[0]
    assert verify_from_spec(old, headers, body) == "no matching signature"
    assert verify_from_spec(new, headers, body) is None


def test_rotate_secret_twice_keeps_only_the_last_old_secret(app, receiver, webhook):
    first = receiver.secret
    second, _ = _rotate(app, webhook)
    third, _ = _rotate(app, webhook)
    receiver.secret = second
    assert run_attempt(app, webhook)["status"] == "succeeded"
    headers, body, _ = receiver.requests[0]
    assert verify_from_spec(third, headers, body) is None
    assert verify_from_spec(first, headers, body) == "no matching signature"


def test_rotate_secret_with_negative_grace_is_refused(app, webhook):
    with pytest.raises(ValueError, match="cannot be negative"):
        _rotate(app, webhook, grace=dt.timedelta(hours=-1))


def test_rotate_secret_audits_without_either_secret(app, receiver, webhook):
    old = receiver.secret
    new, _ = _rotate(app, webhook)
    with app.app_context():
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "delivery_channel.secret_rotated")
        )
        details = event.details
    assert new not in str(details) and old not in str(details)
    assert details["old_secret_signs_until"].startswith(str(utcnow().year))


def _resolving(monkeypatch, name: str, addresses: list[str]) -> None:
    """Make `name` resolve to `addresses`, in that order; other names resolve as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != name:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_webhook_when_first_address_refuses_connection_is_sent_to_the_next(
    app, receiver, invoice_id, monkeypatch
):
    port = receiver.server.server_address[1]
    _resolving(monkeypatch, "hooks.acme.example", ["127.0.0.2", "127.0.0.1"])  # nothing on .2
    app.config["WEBHOOK_ALLOWLIST"] = ["127.0.0.0/8"]
    receiver.secret = new_webhook_secret()
    channel_id = add_channel(
        app, "webhook", target=f"http://hooks.acme.example:{port}/hooks/invoices", secret=receiver.secret
    )
    with app.app_context():
        deliver_invoice(invoice_id)
    result = run_attempt(app, delivery_for(app, invoice_id, channel_id).id)
    assert result["status"] == "succeeded" and len(receiver.requests) == 1
    assert receiver.requests[0][0]["host"] == f"hooks.acme.example:{port}"


def test_webhook_when_every_address_refuses_connection_names_each_and_retries(
    app, receiver, invoice_id, monkeypatch
):
    _resolving(monkeypatch, "hooks.acme.example", ["127.0.0.2", "127.0.0.3"])
    app.config["WEBHOOK_ALLOWLIST"] = ["127.0.0.0/8"]
    channel_id = add_channel(
        app, "webhook", target="http://hooks.acme.example:9/in", secret=new_webhook_secret()
    )
    with app.app_context():
        deliver_invoice(invoice_id)
    delivery_id = delivery_for(app, invoice_id, channel_id).id
    with pytest.raises(DeliveryRetry):
        run_attempt(app, delivery_id)
    (attempt,) = attempts(app, delivery_id)
    assert "127.0.0.2" in attempt.error and "127.0.0.3" in attempt.error
