"""The customer's view of an invoice's audit trail: generated, viewed, decided, delivered, downloaded.

Scoped twice: the invoice must be the contact's customer's (else 404), and so must each event.
"""

from __future__ import annotations

from flask import render_template
from flask_login import current_user
from sqlalchemy import select

from portal.audit import describe
from portal.customer import bp
from portal.extensions import db
from portal.models import AuditEvent, Invoice
from portal.tenancy import get_or_404


@bp.route("/invoices/<int:invoice_id>/trail")
def invoice_trail(invoice_id: int):
    """Who did what to this invoice and when, newest first; another customer's invoice is 404."""
    invoice = get_or_404(Invoice, invoice_id)
    events = db.session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.subject_type == "Invoice",
            AuditEvent.subject_id == str(invoice.id),
            AuditEvent.customer_id == current_user.customer_id,
        )
        .order_by(AuditEvent.seq.desc())
    ).all()
    return render_template(
        "audit/trail.html",
        title=f"History of invoice {invoice.number}",
        events=[(e, describe(e.action)) for e in events],
    )
