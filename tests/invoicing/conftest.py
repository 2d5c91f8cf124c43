"""Invoicing fixtures; `billing` (tenants plus line items added directly) is in tests/conftest.py."""

import pytest
from sqlalchemy import select

from portal import accounts
from portal.extensions import db
from portal.models import Invoice
from tests.factories import PASSWORD, build


@pytest.fixture
def invoice_id(app, billing):
    """ACME's October invoice awaiting approval (1,200.00 USD, plus 45.00 from a prior period), and a GLOBEX
    contact who must not see it."""
    billing.add(120000, "2026-10-03", employee="E1")
    billing.add(4500, "2026-09-20", employee="E2", partner="code-camp", expense_type="tutoring")
    build(app)
    with app.app_context():
        accounts.create_user(
            email="globex@globex.example", password=PASSWORD, role="customer", customer_code="GLOBEX"
        )
        db.session.commit()
        return db.session.scalar(select(Invoice.id))
