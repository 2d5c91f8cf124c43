"""Fixtures for rendering tests: the invoicing `billing` fixture and an approved invoice builder."""

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import lifecycle
from portal.invoicing.build import run_period
from portal.models import Customer, Invoice
from tests.invoicing.conftest import billing  # noqa: F401


@pytest.fixture
def app(app):
    # portal.delivery is another issue's work; the enqueue after rendering is tested there.
    app.config["RENDER_THEN_DELIVER"] = False
    return app


def build_invoice(app, *, code="ACME", period="2026-10", approve=True) -> int:
    """Build the period's invoice for `code` (and approve it); returns its id."""
    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.code == code))
        run_period(customer_id, period, force=True)
        db.session.commit()
        invoice = db.session.scalar(
            select(Invoice).where(Invoice.customer_id == customer_id).order_by(Invoice.id.desc())
        )
        if approve:
            lifecycle.approve(invoice, by=None)
            db.session.commit()
        return invoice.id
