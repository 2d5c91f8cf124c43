"""The customer's view of an invoice's audit trail: generated, viewed, decided, delivered, downloaded.

Scoped twice: the invoice must be the contact's customer's (else 404), and so must each event.
"""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from portal.core.audit import absorb_views, subject_trail
from portal.core.tenancy import get_or_404
from portal.customer import bp
from portal.models import Invoice


@bp.route("/invoices/<id:invoice_id>/trail")
def invoice_trail(invoice_id: int):
    """Who did what to this invoice and when, newest first; another customer's invoice is 404."""
    absorb_views()  # page views recorded beside the chain are shown like any event
    invoice = get_or_404(Invoice, invoice_id)
    return render_template(
        "audit/trail.html",
        title=f"History of invoice {invoice.number}",
        events=subject_trail(invoice, user=current_user),
    )
