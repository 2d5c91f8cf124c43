"""The render job: an approved invoice's CSV and PDF/A-3, stored once, hashed into the audit trail.

Idempotent: once both documents exist they are returned as they are, so every download gives the
same bytes. The rendered files are deterministic too, so two racing jobs store identical bytes.
"""

from __future__ import annotations

import hashlib
import io
import logging

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal import jobs
from portal.core import audit
from portal.core.storage import get_storage
from portal.extensions import db
from portal.models import Invoice, InvoiceStatus
from portal.models.delivery import InvoiceDocument
from portal.rendering.csv_export import invoice_csv, line_rows
from portal.rendering.pdf import invoice_html, our_details_from_config
from portal.rendering.sandbox import render_pdf_capped

log = logging.getLogger(__name__)

KINDS = ("pdf", "csv")
RENDERABLE = (InvoiceStatus.APPROVED, InvoiceStatus.DELIVERED)


def storage_key(invoice: Invoice, kind: str) -> str:
    """The documented layout: invoices/<customer code>/<invoice number>/<invoice number>.<kind>."""
    return f"invoices/{invoice.customer.code}/{invoice.number}/{invoice.number}.{kind}"


def document_for(invoice: Invoice, kind: str) -> InvoiceDocument | None:
    return db.session.scalar(
        select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice.id, InvoiceDocument.kind == kind)
    )


def _documents(invoice_id: int) -> dict[str, InvoiceDocument]:
    return {
        d.kind: d
        for d in db.session.scalars(select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice_id))
    }


def _describe(invoice: Invoice, documents: dict[str, InvoiceDocument], status: str) -> dict:
    return {
        "invoice": invoice.number,
        "status": status,
        "documents": {
            kind: {"storage_key": d.storage_key, "sha256": d.sha256, "size_bytes": d.size_bytes}
            for kind, d in sorted(documents.items())
        },
    }


def _progress(phase: str) -> None:
    """Tell the invoice page what we are doing, when running as a job (RQ knows its id)."""
    try:
        from rq import get_current_job  # inside the try: outside a worker RQ may not be set up

        job = get_current_job()
    except Exception:  # outside a worker there is no current job; progress is a courtesy
        job = None
    if job is not None:
        jobs.set_progress(job.id, phase=phase)


def render_invoice(invoice_id: int) -> dict:
    """The job (queue `render`): render, store and record both deliverables of an approved invoice.

    Returns what exists afterwards. A pending, denied or void invoice is not rendered: the result
    says so (status "refused") rather than raising, so the job is not retried for nothing.
    """
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        raise LookupError(f"no invoice {invoice_id}")
    existing = _documents(invoice_id)
    if set(existing) == set(KINDS):
        return _describe(invoice, existing, "exists")
    if invoice.status not in RENDERABLE:
        return {
            "invoice": invoice.number,
            "status": "refused",
            "message": f"Invoice {invoice.number} is {invoice.status.label.lower()}; "
            "only approved or delivered invoices are rendered.",
            "documents": {},
        }
    _progress("csv")
    rows = line_rows(invoice_id)  # read once, for both files
    csv_bytes = invoice_csv(invoice_id, rows)
    _progress("pdf")
    html = invoice_html(invoice_id, our_details=our_details_from_config(), rows=rows)
    # Do not hold a database transaction (and SQLite's lock) open for the whole render.
    db.session.commit()
    pdf_bytes = render_pdf_capped(html, csv_bytes, filename_stem=invoice.number).pdf
    _progress("store")
    storage = get_storage()
    documents = {}
    for kind, data in (("pdf", pdf_bytes), ("csv", csv_bytes)):
        key = storage_key(invoice, kind)
        digest = storage.put(key, io.BytesIO(data))
        if digest != hashlib.sha256(data).hexdigest():  # the backend stored something else
            raise RuntimeError(f"storage returned sha256 {digest} for {key}, which is not what was sent")
        documents[kind] = InvoiceDocument(
            invoice_id=invoice.id, kind=kind, storage_key=key, sha256=digest, size_bytes=len(data)
        )
    try:
        with db.session.begin_nested():
            db.session.add_all(documents.values())
    except IntegrityError:
        # A concurrent render of the same invoice won; it stored the same bytes (rendering is
        # deterministic), so its rows describe what is in storage now.
        db.session.rollback()
        invoice = db.session.get(Invoice, invoice_id)
        return _describe(invoice, _documents(invoice_id), "exists")
    audit.record(
        "invoice.rendered",
        subject=invoice,
        details={
            "number": invoice.number,
            "pdf_sha256": documents["pdf"].sha256,
            "csv_sha256": documents["csv"].sha256,
            "pdf_bytes": documents["pdf"].size_bytes,
            "csv_bytes": documents["csv"].size_bytes,
        },
    )
    if current_app.config.get("RENDER_THEN_DELIVER", True):
        jobs.enqueue(
            # Named, not imported: portal.delivery imports invoicing.lifecycle, which imports this
            # module to hand approved invoices to render_invoice.
            "portal.delivery.deliver_invoice",
            invoice.id,
            queue="delivery",
            description=f"Deliver invoice {invoice.number}",
        )
    db.session.commit()
    _progress("done")
    return _describe(invoice, documents, "rendered")
