"""End to end: approval records the render job; rendering stores the files; delivery marks it delivered."""

from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import lifecycle
from portal.jobs.workers import drain
from portal.models import AuditEvent, Delivery, Invoice, InvoiceDocument
from tests.factories import build


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


def _approved(app, billing):
    from portal import accounts
    from tests.factories import PASSWORD

    billing.add(120000, "2026-10-03", employee="E1")
    build(app)
    with app.app_context():
        accounts.create_user(
            email="globex@globex.example", password=PASSWORD, role="customer", customer_code="GLOBEX"
        )
        invoice = db.session.scalar(select(Invoice))
        lifecycle.approve(invoice, by=None)
        db.session.commit()
        return invoice.id, invoice.render_job_id


def test_documents_section_while_rendering_shows_step_without_recording_a_view(app, billing, client, auth):
    from portal import jobs

    invoice_id, job_id = _approved(app, billing)
    with app.app_context():
        jobs.set_progress(job_id, phase="pdf")
    auth.login("contact@acme.example")
    section = client.get(f"/customer/invoices/{invoice_id}/documents").data.decode()
    assert "being prepared: laying out the PDF" in section
    assert f'hx-get="/customer/invoices/{invoice_id}/documents"' in section
    with app.app_context():
        assert not db.session.scalars(select(AuditEvent).where(AuditEvent.action == "invoice.viewed")).all()


def test_documents_section_when_render_failed_says_so_and_stops_polling(app, billing, client, auth):
    from portal.models import JobRecord, JobStatus

    invoice_id, job_id = _approved(app, billing)
    with app.app_context():
        record = db.session.get(JobRecord, job_id)
        record.status, record.error = JobStatus.FAILED, "RenderError: needed more than 1536 MB"
        db.session.commit()
    auth.login("contact@acme.example")
    section = client.get(f"/customer/invoices/{invoice_id}/documents").data.decode()
    assert "could not be prepared" in section and "hx-get" not in section
    assert "1536 MB" not in section  # the technical reason is for admins
    auth.logout()
    auth.login("admin@example.com")
    page = client.get(f"/admin/invoices/{invoice_id}").data.decode()
    assert "The render job failed" in page and "needed more than 1536 MB" in page


def test_other_customer_cannot_reach_rendered_documents(app, billing, client, auth):
    invoice_id, _ = _approved(app, billing)
    drain(app)
    auth.login("globex@globex.example")
    for path in ("documents/pdf", "documents/csv", "documents"):
        assert client.get(f"/customer/invoices/{invoice_id}/{path}").status_code == 404, path
    auth.logout()
    auth.login("contact@acme.example")
    assert client.get(f"/customer/invoices/{invoice_id}/documents/csv").status_code == 200
