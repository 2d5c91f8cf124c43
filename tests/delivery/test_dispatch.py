"""Deliveries of an invoice: created once, delivered when all succeed, redelivery, retry schedule."""

import random

import pytest
from sqlalchemy import func, select

from portal.delivery import (
    MAX_ATTEMPTS,
    DeliveryError,
    attempt_delivery,
    deliver_invoice,
    delivery_summary,
    new_webhook_secret,
    redeliver,
    retry_schedule,
)
from portal.delivery.dispatch import RETRY_BASE_SECONDS, RETRY_CAP_SECONDS, RETRY_JITTER
from portal.delivery.manage import set_enabled
from portal.extensions import db
from portal.invoicing.lifecycle import void
from portal.jobs.workers import drain
from portal.models import (
    AuditEvent,
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    Invoice,
    InvoiceStatus,
    JobRecord,
)
from tests.factories import add_channel, delivery_for

HOURS_72 = 72 * 3600


def status_of(app, invoice_id):
    with app.app_context():
        return db.session.get(Invoice, invoice_id).status


def start(app, invoice_id):
    with app.app_context():
        return deliver_invoice(invoice_id)


def test_invoice_becomes_delivered_when_every_delivery_succeeds(app, invoice_id, receiver):
    receiver.secret = new_webhook_secret()
    add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    start(app, invoice_id)
    drain(app, queues=["delivery"])
    assert status_of(app, invoice_id) == InvoiceStatus.DELIVERED
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invoice.delivered"))


def test_invoice_stays_approved_while_a_delivery_has_not_succeeded(app, invoice_id, receiver):
    receiver.secret = new_webhook_secret()
    receiver.answer = 500
    add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    start(app, invoice_id)
    drain(app, queues=["delivery"])  # the archive succeeds, the webhook waits for its retry
    assert status_of(app, invoice_id) == InvoiceStatus.APPROVED


def test_deliver_invoice_twice_creates_each_delivery_once(app, invoice_id):
    add_channel(app, "email")
    first, second = start(app, invoice_id), start(app, invoice_id)
    assert len(first["deliveries"]) == 2 and second["deliveries"] == []
    with app.app_context():
        assert db.session.scalar(select(func.count(Delivery.id))) == 2
        assert db.session.scalar(select(func.count(JobRecord.id)).where(JobRecord.queue == "delivery")) == 2


def test_deliver_invoice_records_attempts_with_long_retry_schedule(app, invoice_id):
    start(app, invoice_id)
    with app.app_context():
        record = db.session.scalar(select(JobRecord).where(JobRecord.queue == "delivery"))
        assert record.max_attempts == MAX_ATTEMPTS
        assert len(record.retry_intervals) == MAX_ATTEMPTS - 1 and sum(record.retry_intervals) >= HOURS_72


def test_attempt_when_last_retry_fails_marks_delivery_failed(app, invoice_id, receiver):
    receiver.secret = new_webhook_secret()
    receiver.answer = 503
    channel_id = add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    start(app, invoice_id)
    delivery_id = delivery_for(app, invoice_id, channel_id).id
    with app.app_context():
        db.session.get(Delivery, delivery_id).attempts = MAX_ATTEMPTS - 1
        db.session.commit()
        result = attempt_delivery(delivery_id)  # returns: no retry is left
    assert result["status"] == "failed"
    assert delivery_for(app, invoice_id, channel_id).status == DeliveryStatus.FAILED


def test_redeliver_resets_failed_delivery_and_it_succeeds(app, invoice_id, receiver):
    receiver.secret = new_webhook_secret()
    channel_id = add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    app.config["WEBHOOK_ALLOWLIST"] = []  # refused: fails for good
    start(app, invoice_id)
    drain(app, queues=["delivery"])
    assert delivery_for(app, invoice_id, channel_id).status == DeliveryStatus.FAILED

    app.config["WEBHOOK_ALLOWLIST"] = ["127.0.0.1"]  # an admin fixed the setting
    with app.app_context():
        details = redeliver(db.session.get(Invoice, invoice_id), by=None)
        db.session.commit()
    drain(app, queues=["delivery"])
    assert details["requeued"] == [delivery_for(app, invoice_id, channel_id).id]
    assert delivery_for(app, invoice_id, channel_id).status == DeliveryStatus.SUCCEEDED
    assert status_of(app, invoice_id) == InvoiceStatus.DELIVERED


def test_redeliver_writes_audit_event(app, invoice_id):
    start(app, invoice_id)
    with app.app_context():
        redeliver(db.session.get(Invoice, invoice_id), by=None)
        db.session.commit()
        assert db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "delivery.redelivery_requested")
        )


def test_redeliver_when_invoice_void_is_refused(app, invoice_id):
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        void(invoice, by=None, reason="wrong customer")
        with pytest.raises(DeliveryError, match="cannot be delivered"):
            redeliver(invoice, by=None)


def test_delivery_summary_lists_each_delivery_with_its_attempts(app, invoice_id):
    add_channel(app, "email", target="ap@acme.example")
    start(app, invoice_id)
    drain(app, queues=["delivery"])
    with app.app_context():
        rows = delivery_summary(db.session.get(Invoice, invoice_id))
        summary = [(row.channel.kind.value, row.delivery.status.value, len(row.attempts)) for row in rows]
    assert summary == [("email", "succeeded", 1), ("archive", "succeeded", 1)]


def test_retry_schedule_spans_72_hours_even_with_least_jitter():
    class Lowest(random.Random):
        def uniform(self, a, b):
            return a

    assert sum(retry_schedule(Lowest())) >= HOURS_72


def test_retry_schedule_is_jittered():
    assert retry_schedule(random.Random(1)) != retry_schedule(random.Random(2))


def test_retry_schedule_stays_within_jitter_of_exponential_backoff():
    for n, seconds in enumerate(retry_schedule()):
        nominal = min(RETRY_BASE_SECONDS * 2**n, RETRY_CAP_SECONDS)
        assert nominal * (1 - RETRY_JITTER) - 1 <= seconds <= nominal * (1 + RETRY_JITTER) + 1


def _failed_webhook_after_410(app, invoice_id, receiver):
    """ACME's webhook answered 410 (its channel is now disabled); the archive succeeded."""
    receiver.secret = new_webhook_secret()
    receiver.answer = 410
    channel_id = add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    start(app, invoice_id)
    drain(app, queues=["delivery"])
    return channel_id


def test_invoice_when_webhook_answered_410_stays_approved(app, invoice_id, receiver):
    channel_id = _failed_webhook_after_410(app, invoice_id, receiver)
    assert delivery_for(app, invoice_id, channel_id).status == DeliveryStatus.FAILED
    assert status_of(app, invoice_id) == InvoiceStatus.APPROVED


def test_invoice_when_admin_disables_pending_webhook_stays_approved_after_others_succeed(
    app, invoice_id, receiver
):
    receiver.secret = new_webhook_secret()
    channel_id = add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    start(app, invoice_id)
    with app.app_context():
        set_enabled(db.session.get(DeliveryChannel, channel_id), False, by=None)
        db.session.commit()
    drain(app, queues=["delivery"])  # the archive succeeds; the webhook is refused: channel disabled
    assert delivery_for(app, invoice_id, channel_id).status == DeliveryStatus.FAILED
    assert status_of(app, invoice_id) == InvoiceStatus.APPROVED


def test_redeliver_after_410_channel_reenabled_completes_invoice(app, invoice_id, receiver):
    channel_id = _failed_webhook_after_410(app, invoice_id, receiver)
    receiver.answer = 200  # the customer restored its endpoint
    with app.app_context():
        set_enabled(db.session.get(DeliveryChannel, channel_id), True, by=None)
        redeliver(db.session.get(Invoice, invoice_id), by=None)
        db.session.commit()
    drain(app, queues=["delivery"])
    assert delivery_for(app, invoice_id, channel_id).status == DeliveryStatus.SUCCEEDED
    assert status_of(app, invoice_id) == InvoiceStatus.DELIVERED


def test_redeliver_while_channel_still_disabled_keeps_invoice_approved(app, invoice_id, receiver):
    channel_id = _failed_webhook_after_410(app, invoice_id, receiver)
    with app.app_context():
        details = redeliver(db.session.get(Invoice, invoice_id), by=None)
        db.session.commit()
    drain(app, queues=["delivery"])
    assert details["skipped"] == [delivery_for(app, invoice_id, channel_id).id]
    assert status_of(app, invoice_id) == InvoiceStatus.APPROVED


def test_redeliver_creates_delivery_for_channel_added_since_and_completes_invoice(app, invoice_id, receiver):
    channel_id = _failed_webhook_after_410(app, invoice_id, receiver)
    email_id = add_channel(app, "email", target="ap@acme.example")
    receiver.answer = 200
    with app.app_context():
        set_enabled(db.session.get(DeliveryChannel, channel_id), True, by=None)
        details = redeliver(db.session.get(Invoice, invoice_id), by=None)
        db.session.commit()
    assert details["created"] == [delivery_for(app, invoice_id, email_id).id]
    assert status_of(app, invoice_id) == InvoiceStatus.APPROVED  # the email has not gone yet
    drain(app, queues=["delivery"])
    assert delivery_for(app, invoice_id, email_id).status == DeliveryStatus.SUCCEEDED
    assert status_of(app, invoice_id) == InvoiceStatus.DELIVERED


def _waive(app, invoice_id, channel_id, reason="Customer retired this webhook"):
    from portal.delivery import waive

    with app.app_context():
        delivery = db.session.scalar(
            select(Delivery).where(Delivery.invoice_id == invoice_id, Delivery.channel_id == channel_id)
        )
        delivered = waive(delivery, by=None, reason=reason)
        db.session.commit()
        return delivered


def test_waive_failed_webhook_after_archive_succeeded_completes_invoice(app, invoice_id, receiver):
    channel_id = _failed_webhook_after_410(app, invoice_id, receiver)
    assert _waive(app, invoice_id, channel_id) is True
    assert status_of(app, invoice_id) == InvoiceStatus.DELIVERED
    with app.app_context():
        delivery = delivery_for(app, invoice_id, channel_id)
        assert (delivery.status, delivery.waived_reason) == (
            DeliveryStatus.WAIVED,
            "Customer retired this webhook",
        )
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "delivery.waived"))
        assert event.details["reason"] == "Customer retired this webhook"


def test_waive_without_reason_refused_and_invoice_stays_approved(app, invoice_id, receiver):
    channel_id = _failed_webhook_after_410(app, invoice_id, receiver)
    with pytest.raises(DeliveryError, match="a reason is required"):
        _waive(app, invoice_id, channel_id, reason="  ")
    assert status_of(app, invoice_id) == InvoiceStatus.APPROVED
    assert delivery_for(app, invoice_id, channel_id).status == DeliveryStatus.FAILED


def test_waive_succeeded_delivery_refused(app, invoice_id, receiver):
    receiver.secret = new_webhook_secret()
    channel_id = add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    start(app, invoice_id)
    drain(app, queues=["delivery"])
    with pytest.raises(DeliveryError, match="Only a failed delivery can be waived; this one has succeeded"):
        _waive(app, invoice_id, channel_id)


def test_waive_from_admin_page_then_page_shows_reason(app, client, auth, invoice_id, receiver):
    channel_id = _failed_webhook_after_410(app, invoice_id, receiver)
    delivery_id = delivery_for(app, invoice_id, channel_id).id
    auth.login("admin@example.com")
    assert "Waive this delivery" in client.get(f"/admin/invoices/{invoice_id}").data.decode()
    page = client.post(
        f"/admin/deliveries/{delivery_id}/waive", data={"reason": "Retired endpoint"}, follow_redirects=True
    ).data.decode()
    assert "the invoice is delivered" in page and "Waived: Retired endpoint" in page
