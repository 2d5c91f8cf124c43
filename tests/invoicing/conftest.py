"""A customer with employees, two partners and a way to add line items directly, for invoicing tests."""

import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Customer, Employee, LineItem, Partner, Upload
from tests.conftest import PASSWORD

_refs = itertools.count(1)


class Billing:
    def __init__(self, app, ids):
        self.app = app
        self.ids = ids

    def add(self, amount_minor, service_date, *, customer="ACME", employee="E1", currency="USD",
            partner="state-u", expense_type="tuition", ref=None):  # fmt: skip
        """Insert one imported line item; returns its id."""
        with self.app.app_context():
            customer_id = db.session.scalar(select(Customer.id).where(Customer.code == customer))
            employee_id = db.session.scalar(
                select(Employee.id).where(
                    Employee.customer_id == customer_id, Employee.external_id == employee
                )
            )
            partner_id = db.session.scalar(select(Partner.id).where(Partner.slug == partner))
            line = LineItem(
                partner_id=partner_id,
                customer_id=customer_id,
                employee_id=employee_id,
                partner_reference=ref or f"REF-{next(_refs)}",
                expense_type=expense_type,
                amount_minor=amount_minor,
                currency=currency,
                service_date=dt.date.fromisoformat(service_date),
                description="Course",
                upload_id=self.ids["upload"][partner],
                source_row=2,
                fingerprint="x" * 64,
            )
            db.session.add(line)
            db.session.commit()
            return line.id


@pytest.fixture
def billing(app):
    from portal import accounts

    with app.app_context():
        partners = [
            accounts.create_partner(slug="state-u", name="State University"),
            accounts.create_partner(slug="code-camp", name="Code Camp", kind="business"),
        ]
        for code, tz in (("ACME", "America/New_York"), ("GLOBEX", "Europe/London")):
            customer = accounts.create_customer(code=code, name=f"{code.title()} Inc", timezone=tz)
            for n in (1, 2, 3):
                db.session.add(Employee(customer_id=customer.id, external_id=f"E{n}", name=f"Person {n}"))
        accounts.create_user(email="admin@example.com", password=PASSWORD, role="admin")
        accounts.create_user(
            email="contact@acme.example", password=PASSWORD, role="customer", customer_code="ACME"
        )
        accounts.create_user(
            email="second@acme.example", password=PASSWORD, role="customer", customer_code="ACME"
        )
        uploads = {}
        for partner in partners:
            upload = Upload(
                partner_id=partner.id, filename="f.csv", storage_key="k", sha256="0" * 64, size_bytes=1
            )
            db.session.add(upload)
            db.session.flush()
            uploads[partner.slug] = upload.id
        db.session.commit()
    return Billing(app, {"upload": uploads})
