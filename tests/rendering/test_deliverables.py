"""The render job: both files stored, their sha256 in the audit trail, idempotent, approved only."""

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.core.storage import get_storage
from portal.extensions import db
from portal.models import AuditEvent, Invoice
from portal.models.delivery import InvoiceDocument
from portal.rendering import deliverables
from portal.rendering.deliverables import document_for, render_invoice
from tests.factories import build_invoice

ROOT = Path(__file__).resolve().parents[2]


def stored(app, key):
    with app.app_context(), get_storage().open(key) as f:
        return f.read()


def test_render_invoice_when_approved_stores_pdf_and_csv_under_documented_keys(app, billing):
    billing.add(100, "2026-10-03")
    invoice_id = build_invoice(app)
    with app.app_context():
        result = render_invoice(invoice_id)
        invoice = db.session.get(Invoice, invoice_id)
        pdf, csv = document_for(invoice, "pdf"), document_for(invoice, "csv")
        keys = (pdf.storage_key, csv.storage_key)
    assert result["status"] == "rendered"
    assert keys == (
        "invoices/ACME/ACME-2026-10-1/ACME-2026-10-1.pdf",
        "invoices/ACME/ACME-2026-10-1/ACME-2026-10-1.csv",
    )
    assert stored(app, keys[0]).startswith(b"%PDF-") and stored(app, keys[1]).startswith(b"invoice_number,")


def test_render_invoice_when_done_records_sha256_of_stored_bytes_in_audit(app, billing):
    billing.add(100, "2026-10-03")
    invoice_id = build_invoice(app)
    with app.app_context():
        render_invoice(invoice_id)
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invoice.rendered"))
        docs = {d.kind: d for d in db.session.scalars(select(InvoiceDocument))}
        details, subject = event.details, (event.subject_type, event.subject_id)
    pdf_bytes, csv_bytes = stored(app, docs["pdf"].storage_key), stored(app, docs["csv"].storage_key)
    assert subject == ("Invoice", str(invoice_id))
    assert details["pdf_sha256"] == hashlib.sha256(pdf_bytes).hexdigest() == docs["pdf"].sha256
    assert details["csv_sha256"] == hashlib.sha256(csv_bytes).hexdigest() == docs["csv"].sha256
    assert (details["pdf_bytes"], details["csv_bytes"]) == (len(pdf_bytes), len(csv_bytes))


def test_render_invoice_when_called_twice_returns_same_documents_without_rendering(app, billing, monkeypatch):
    billing.add(100, "2026-10-03")
    invoice_id = build_invoice(app)
    with app.app_context():
        first = render_invoice(invoice_id)

    def must_not_render(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(deliverables, "render_pdf_capped", must_not_render)
    with app.app_context():
        second = render_invoice(invoice_id)
        count = db.session.scalar(select(func.count(InvoiceDocument.id)))
        events = db.session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "invoice.rendered")
        )
    assert second["status"] == "exists" and second["documents"] == first["documents"]
    assert (count, events) == (2, 1)


def test_render_invoice_when_pending_refuses_and_stores_nothing(app, billing):
    billing.add(100, "2026-10-03")
    invoice_id = build_invoice(app, approve=False)
    with app.app_context():
        result = render_invoice(invoice_id)
        count = db.session.scalar(select(func.count(InvoiceDocument.id)))
    assert result["status"] == "refused"
    assert "is pending approval; only approved or delivered invoices are rendered" in result["message"]
    assert count == 0


def test_render_invoice_when_delivery_enabled_enqueues_delivery_job(app, billing, monkeypatch):
    from portal import jobs

    billing.add(100, "2026-10-03")
    invoice_id = build_invoice(app)
    app.config["RENDER_THEN_DELIVER"] = True
    calls = []
    monkeypatch.setattr(jobs, "enqueue", lambda func, *args, **kw: calls.append((func, args, kw["queue"])))
    with app.app_context():
        render_invoice(invoice_id)
    assert calls == [("portal.delivery.deliver_invoice", (invoice_id,), "delivery")]


# worker.py needs a Redis that another process can see: PostgreSQL + Redis backend only.
@pytest.mark.parametrize("backend", ["postgresql"])
def test_worker_py_renders_approved_invoice_through_its_render_server(app, backend, billing, tmp_path):
    """worker.py starts the render server before its first fork; the job's work horse uses it."""
    billing.add(100, "2026-10-03")
    invoice_id = build_invoice(app)  # approval records the render job
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "STORAGE_URL": app.config["STORAGE_URL"],
        "SECRET_KEY": "test",
        "RENDER_THEN_DELIVER": "false",
        "PORTAL_INSTANCE_PATH": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--burst", "render"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"render server \d+ listening", done.stderr)
    assert "rendered ACME-2026-10-1 through the render server" in done.stderr
    with app.app_context():
        assert document_for(db.session.get(Invoice, invoice_id), "pdf") is not None
