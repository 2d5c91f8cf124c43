"""No N+1 queries: the invoice pages and the admin overview send as many SQL statements for an
invoice of 50 employees as for one of 5 (counted at the DB-API cursor)."""

import datetime as dt
import itertools

import pytest
from sqlalchemy import event, select

from portal import accounts
from portal.extensions import db
from portal.models import Customer, Employee, Invoice, LineItem, Partner, Upload
from tests.factories import PASSWORD, build

LINES_PER_EMPLOYEE = 3
# Today: customer page 17, its lines 9, admin invoice page 13, its lines 8, overview 20 (PostgreSQL).
MOST_STATEMENTS = 30
_refs = itertools.count(1)


def _bill_employees(app, code: str, count: int) -> int:
    """Give customer `code` `count` employees with three October lines each; build; the invoice's id."""
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.code == code))
        partner = db.session.scalar(select(Partner).where(Partner.slug == "state-u"))
        upload_id = db.session.scalar(select(Upload.id).where(Upload.partner_id == partner.id))
        for n in range(count):
            employee = Employee(customer_id=customer.id, external_id=f"N{n}", name=f"Employee {n}")
            db.session.add(employee)
            db.session.flush()
            for day in range(1, LINES_PER_EMPLOYEE + 1):
                db.session.add(
                    LineItem(
                        partner_id=partner.id, customer_id=customer.id, employee_id=employee.id,
                        partner_reference=f"QC-{next(_refs)}", expense_type="tuition",
                        amount_minor=10000 + n, currency="USD", service_date=dt.date(2026, 10, day),
                        description="Course", upload_id=upload_id, source_row=2, fingerprint="x" * 64,
                    )
                )  # fmt: skip
        db.session.commit()
    build(app, code=code)
    with app.app_context():
        return db.session.scalar(
            select(Invoice.id).join(Customer).where(Customer.code == code).order_by(Invoice.id.desc())
        )


def _statements(app, client, url: str, **headers) -> int:
    """How many statements answering `url` sends (after one warm-up request: session bookkeeping)."""
    assert client.get(url, headers=headers).status_code == 200
    with app.app_context():
        engine = db.engine
    sent = []

    def count(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(url, headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(sent)


@pytest.fixture
def invoices(app, billing):
    """ACME's invoice for 5 employees and GLOBEX's for 50, and a GLOBEX contact."""
    small = _bill_employees(app, "ACME", 5)
    large = _bill_employees(app, "GLOBEX", 50)
    with app.app_context():
        accounts.create_user(
            email="contact@globex.example", password=PASSWORD, role="customer", customer_code="GLOBEX"
        )
        db.session.commit()
    return {"ACME": small, "GLOBEX": large}


def _as(app, email: str):
    client = app.test_client()
    client.post("/login", data={"email": email, "password": PASSWORD})
    return client


@pytest.mark.parametrize(
    "page, headers",
    [
        ("/customer/invoices/{id}", {}),
        ("/customer/invoices/{id}/lines?page=1", {"HX-Request": "true"}),
    ],
)
def test_customer_invoice_page_when_50_employees_sends_as_many_statements_as_for_5(
    app, invoices, page, headers
):
    small = _statements(app, _as(app, "contact@acme.example"), page.format(id=invoices["ACME"]), **headers)
    large = _statements(
        app, _as(app, "contact@globex.example"), page.format(id=invoices["GLOBEX"]), **headers
    )
    assert large == small
    assert small <= MOST_STATEMENTS


@pytest.mark.parametrize(
    "page, headers",
    [
        ("/admin/invoices/{id}", {}),
        ("/admin/invoices/{id}/lines?page=1", {"HX-Request": "true"}),
    ],
)
def test_admin_invoice_page_when_50_employees_sends_as_many_statements_as_for_5(app, invoices, page, headers):
    admin = _as(app, "admin@example.com")
    small = _statements(app, admin, page.format(id=invoices["ACME"]), **headers)
    large = _statements(app, admin, page.format(id=invoices["GLOBEX"]), **headers)
    assert large == small
    assert small <= MOST_STATEMENTS


def test_admin_overview_when_more_employees_billed_sends_as_many_statements(app, billing):
    page = "/admin/"
    _bill_employees(app, "ACME", 5)
    admin = _as(app, "admin@example.com")
    before = _statements(app, admin, page)
    _bill_employees(app, "GLOBEX", 50)
    assert _statements(app, admin, page) == before
    assert before <= MOST_STATEMENTS
