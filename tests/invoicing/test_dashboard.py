"""The customer's dashboard: spend charts per currency, paged history, only the customer's own data."""

from sqlalchemy import select

from portal import accounts
from portal.extensions import db
from portal.invoicing import lifecycle, queries
from portal.invoicing.periods import Period
from portal.models import Customer, Invoice
from portal.models.base import utcnow
from tests.factories import PASSWORD, build

# Last month, which the dashboard's 12-month window always includes.
LAST = Period.of(utcnow().date()).previous


def approve_all(app, code="ACME"):
    with app.app_context():
        for invoice in db.session.scalars(
            select(Invoice).join(Customer).where(Customer.code == code, Invoice.status == "pending_approval")
        ):
            lifecycle.approve(invoice, by=None)
        db.session.commit()


def day(n: int) -> str:
    return LAST.start.replace(day=n).isoformat()


def test_spend_by_partner_sums_approved_lines_of_the_month(app, billing):
    billing.add(120000, day(3), partner="state-u")
    billing.add(4500, day(4), partner="code-camp", expense_type="tutoring")
    billing.add(500, day(5), partner="code-camp", expense_type="tutoring")
    build(app, period=LAST.key)
    approve_all(app)
    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
        chart = queries.monthly_spend(customer_id, "partner", today=utcnow().date())
    series = {s["label"]: s["values"][-1] for s in chart["series"]}
    assert (chart["currency"], series) == ("USD", {"State University": 120000, "Code Camp": 5000})


def test_pending_invoice_is_not_counted_as_spend(app, billing):
    billing.add(120000, day(3))
    build(app, period=LAST.key)
    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
        assert queries.monthly_spend(customer_id, "partner", today=utcnow().date())["series"] == []


def test_dashboard_draws_charts_for_each_currency(app, billing, client, auth):
    billing.add(120000, day(3))
    billing.add(9900, day(4), currency="EUR")
    build(app, period=LAST.key)
    approve_all(app)
    auth.login("contact@acme.example")
    page = client.get("/customer/").data.decode()
    assert "Monthly spend by partner (USD)" in page and "Monthly spend by partner (EUR)" in page
    assert "€99.00" in page


def test_dashboard_shows_nothing_of_another_customer(app, billing, client, auth):
    billing.add(777700, day(3), customer="GLOBEX")
    build(app, code="GLOBEX", period=LAST.key)
    approve_all(app, code="GLOBEX")
    billing.add(120000, day(3))
    build(app, period=LAST.key)
    auth.login("contact@acme.example")
    page = client.get("/customer/").data.decode()
    assert "ACME-" in page and "$1,200.00" in page
    assert "GLOBEX-" not in page and "7,777.00" not in page


def test_dashboard_history_pages_when_many_invoices(app, billing, client, auth, monkeypatch):
    from portal.customer import routes

    monkeypatch.setattr(routes, "HISTORY_PAGE", 2)
    period = LAST
    for _ in range(3):
        billing.add(100, period.start.isoformat())
        build(app, period=period.key)
        period = period.previous
    approve_all(app)
    auth.login("contact@acme.example")
    first = client.get("/customer/").data.decode()
    assert "Page 1 of 2 (3 invoices)" in first and "Older" in first
    older = client.get("/customer/?page=2").data.decode()
    assert "Page 2 of 2" in older and older.count('class="status status-approved"') == 1


def test_invoice_history_shows_dispute_events(app, billing, client, auth):
    from portal.invoicing import disputes
    from portal.models import LineItem

    line = billing.add(4500, day(3))
    billing.add(100, day(4), employee="E2")
    build(app, period=LAST.key)
    with app.app_context():
        invoice = db.session.scalar(select(Invoice))
        disputes.flag_line(invoice, db.session.get(LineItem, line).id, by=None, comment="Not ours")
        db.session.commit()
        invoice_id = invoice.id
        accounts.create_user(
            email="globex@globex.example", password=PASSWORD, role="customer", customer_code="GLOBEX"
        )
        db.session.commit()
    auth.login("contact@acme.example")
    assert "Line disputed" in client.get(f"/customer/invoices/{invoice_id}/trail").data.decode()
    auth.logout()
    auth.login("globex@globex.example")
    assert client.get(f"/customer/invoices/{invoice_id}/trail").status_code == 404
