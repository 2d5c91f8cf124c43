"""Page views are recorded beside the audit chain, without its lock, and join it with the next append:
in the order they happened, each exactly once, and the chain still verifies."""

import threading

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from portal.core import audit, audit_chain
from portal.extensions import db
from portal.models import AuditEvent, Invoice, PendingView
from portal.models.audit import CHAIN_LOCK_KEY
from tests.factories import PASSWORD, build


@pytest.fixture
def invoice_id(app, billing):
    billing.add(120000, "2026-10-03", employee="E1")
    build(app)
    with app.app_context():
        return db.session.scalar(select(Invoice.id))


def _count(model, **where):
    return db.session.scalar(select(func.count()).select_from(model).filter_by(**where))


# PostgreSQL only: SQLite has one writer at a time whatever the lock; the chain lock is PostgreSQL's.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_invoice_view_when_chain_lock_held_elsewhere_answers_without_waiting(app, invoice_id, backend):
    contact = app.test_client()  # its own client: it is used from another thread below
    contact.post("/login", data={"email": "contact@acme.example", "password": PASSWORD})
    holder = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool).connect()
    holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    statuses = []
    viewer = threading.Thread(
        target=lambda: statuses.append(contact.get(f"/customer/invoices/{invoice_id}").status_code)
    )
    try:
        viewer.start()
        viewer.join(timeout=15)
        finished = not viewer.is_alive()
    finally:
        holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CHAIN_LOCK_KEY})
        holder.close()
        viewer.join()
    assert finished and statuses == [200]
    with app.app_context():
        assert _count(PendingView, action="invoice.viewed") == 1


def test_invoice_view_when_next_event_is_appended_joins_the_chain_before_it(app, client, auth, invoice_id):
    auth.login(email="contact@acme.example", password=PASSWORD)
    assert client.get(f"/customer/invoices/{invoice_id}").status_code == 200
    with app.app_context():
        audit.record("test.after_the_view")
        db.session.commit()
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(2)).all()
        assert [e.action for e in events] == ["test.after_the_view", "invoice.viewed"]
        viewed = events[1]
        assert (viewed.actor_label, viewed.subject_type, viewed.subject_id) == (
            "contact@acme.example", "Invoice", str(invoice_id),
        )  # fmt: skip
        assert viewed.occurred_at <= events[0].occurred_at
        assert _count(PendingView) == 0
        assert audit_chain.verify_chain()[0] is True


def test_trail_when_invoice_viewed_shows_who_viewed_it(app, client, auth, invoice_id):
    auth.login(email="contact@acme.example", password=PASSWORD)
    client.get(f"/customer/invoices/{invoice_id}")
    page = client.get(f"/customer/invoices/{invoice_id}/trail").get_data(as_text=True)
    assert "Invoice viewed" in page
    assert "contact@acme.example" in page


def test_pending_views_when_absorbed_by_concurrent_appenders_are_chained_once(app, invoice_id, backend):
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        for _ in range(30):
            audit.record_view("invoice.viewed", subject=invoice)
        db.session.commit()
    errors = []

    def append(n):
        try:
            with app.app_context():
                audit.record("test.concurrent", details={"n": n})
                db.session.commit()
                audit.absorb_views()
        except Exception as exc:  # noqa: BLE001  (any failure is what the test counts)
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with app.app_context():
        assert _count(AuditEvent, action="invoice.viewed") == 30
        assert _count(PendingView) == 0
        assert audit_chain.verify_chain()[0] is True


def test_record_view_when_action_is_no_page_view_refuses_it(app):
    with app.app_context(), pytest.raises(ValueError, match="not a page view"):
        audit.record_view("invoice.downloaded", subject=Invoice(id=1, customer_id=1))
