"""What invoice pages show of deliveries: each one's status and every attempt, URLs without credentials."""

import pytest
from flask import render_template
from sqlalchemy import event

from portal.delivery import (
    DeliveryRetry,
    attempt_delivery,
    deliver_invoice,
    delivery_summary,
    new_webhook_secret,
    redeliver,
)
from portal.extensions import db
from portal.jobs.workers import drain
from portal.models import Invoice
from tests.factories import add_channel, delivery_for


def _webhook_failing_then_ok(app, invoice_id, receiver):
    """A webhook that answered 500 once, then 200: two attempt rows, the delivery succeeded."""
    receiver.secret = new_webhook_secret()
    receiver.answer = 500
    channel_id = add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    with app.app_context():
        deliver_invoice(invoice_id)
    delivery_id = delivery_for(app, invoice_id, channel_id).id
    with app.app_context(), pytest.raises(DeliveryRetry):
        attempt_delivery(delivery_id)
    receiver.answer = 200
    with app.app_context():
        attempt_delivery(delivery_id)
    return channel_id


def _deliveries_html(app, invoice_id) -> str:
    with app.app_context(), app.test_request_context():
        rows = delivery_summary(db.session.get(Invoice, invoice_id))
        return render_template("invoices/_deliveries.html", deliveries=rows)


def test_deliveries_list_when_webhook_retried_shows_each_attempt_with_outcome_and_http_status(
    app, invoice_id, receiver
):
    _webhook_failing_then_ok(app, invoice_id, receiver)
    html = _deliveries_html(app, invoice_id)
    assert "<summary>2 attempts, last" in html
    assert "· succeeded · HTTP 200</li>" in html
    assert "· failed · HTTP 500 · <small>HTTP 500: ok</small></li>" in html


def test_deliveries_list_after_redeliver_still_shows_earlier_attempts(app, invoice_id, receiver):
    receiver.secret = new_webhook_secret()
    channel_id = add_channel(app, "webhook", target=receiver.url, secret=receiver.secret)
    app.config["WEBHOOK_ALLOWLIST"] = []  # refused: fails for good
    with app.app_context():
        deliver_invoice(invoice_id)
    drain(app, queues=["delivery"])
    app.config["WEBHOOK_ALLOWLIST"] = ["127.0.0.1"]
    with app.app_context():
        redeliver(db.session.get(Invoice, invoice_id), by=None)
        db.session.commit()
    drain(app, queues=["delivery"])
    assert delivery_for(app, invoice_id, channel_id).attempts == 1  # the counter restarted
    html = _deliveries_html(app, invoice_id)
    assert "<summary>2 attempts, last" in html and "refused: webhook host 127.0.0.1" in html


def test_delivery_summary_when_invoice_has_many_deliveries_runs_three_queries(app, invoice_id):
    for n in range(4):
        add_channel(app, "email", target=f"ap{n}@acme.example")
    with app.app_context():
        deliver_invoice(invoice_id)
    drain(app, queues=["delivery"])
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            rows = delivery_summary(invoice)
            kinds = [row.channel.kind.value for row in rows]
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    assert kinds == ["email"] * 4 + ["archive"] and len(statements) == 3


def test_customer_invoice_page_when_delivered_lists_each_attempt(app, client, auth, invoice_id, receiver):
    _webhook_failing_then_ok(app, invoice_id, receiver)
    auth.login("contact@acme.example")
    page = client.get(f"/customer/invoices/{invoice_id}").data.decode()
    assert "<summary>2 attempts, last" in page and "· failed · HTTP 500" in page


def test_admin_invoice_page_when_delivered_lists_each_attempt(app, client, auth, invoice_id, receiver):
    _webhook_failing_then_ok(app, invoice_id, receiver)
    auth.login("admin@example.com")
    page = client.get(f"/admin/invoices/{invoice_id}").data.decode()
    assert "<summary>2 attempts, last" in page and "· failed · HTTP 500" in page


CREDENTIALED = "https://billing:s3cr3t-pw@hooks.acme.example/in"


def test_customer_invoice_page_when_webhook_has_credentials_does_not_show_them(app, client, auth, invoice_id):
    add_channel(app, "webhook", target=CREDENTIALED, secret=new_webhook_secret())
    with app.app_context():
        deliver_invoice(invoice_id)
    auth.login("contact@acme.example")
    page = client.get(f"/customer/invoices/{invoice_id}").data.decode()
    assert "Deliveries" in page and "s3cr3t-pw" not in page
