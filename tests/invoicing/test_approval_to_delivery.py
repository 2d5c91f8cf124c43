"""End to end: approval records the render job; rendering stores the files; delivery marks it delivered."""

from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import lifecycle
from portal.jobs.workers import drain
from portal.models import AuditEvent, Delivery, Invoice, InvoiceDocument
from tests.invoicing.test_build import build


def test_approved_invoice_is_rendered_archived_and_delivered(app, billing, client, auth):
    billing.add(120000, "2026-10-03", employee="E1")
    billing.add(-5000, "2026-10-04", employee="E2")
    build(app)
    with app.app_context():
        invoice = db.session.scalar(select(Invoice))
        lifecycle.approve(invoice, by=None)
        db.session.commit()
        invoice_id = invoice.id
    drain(app)  # render job, then the delivery job it records, then the archive attempt
    drain(app)
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        kinds = sorted(
            db.session.scalars(select(InvoiceDocument.kind).where(InvoiceDocument.invoice_id == invoice_id))
        )
        deliveries = db.session.scalars(select(Delivery).where(Delivery.invoice_id == invoice_id)).all()
        actions = set(db.session.scalars(select(AuditEvent.action)))
        assert kinds == ["csv", "pdf"]
        assert [(d.channel.kind.value, d.status.value) for d in deliveries] == [("archive", "succeeded")]
        assert invoice.status.value == "delivered"
        assert {"invoice.rendered", "delivery.succeeded", "invoice.delivered"} <= actions
    auth.login("contact@acme.example")
    first = client.get(f"/customer/invoices/{invoice_id}/documents/pdf")
    second = client.get(f"/customer/invoices/{invoice_id}/documents/pdf")
    assert first.status_code == 200 and first.data[:5] == b"%PDF-"
    assert first.data == second.data
    page = client.get(f"/customer/invoices/{invoice_id}").data.decode()
    assert "Download PDF" in page and "succeeded" in page


def test_admin_deliveries_page_lists_and_filters(app, billing, client, auth):
    billing.add(100, "2026-10-03")
    build(app)
    with app.app_context():
        lifecycle.approve(db.session.scalar(select(Invoice)), by=None)
        db.session.commit()
    drain(app)
    drain(app)
    auth.login("admin@example.com")
    assert "ACME-2026-10-1" in client.get("/admin/deliveries?status=succeeded").data.decode()
    assert "ACME-2026-10-1" not in client.get("/admin/deliveries?status=failed").data.decode()
