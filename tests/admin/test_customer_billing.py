"""A customer's billing details (address, payment terms, locale): edited by an admin, audited,
checked, and the due date they give an approved invoice."""

import datetime as dt

import pytest
from sqlalchemy import select

from portal import accounts
from portal.extensions import db
from portal.invoicing import lifecycle
from portal.invoicing.terms import due_date
from portal.models import Customer, Invoice
from tests.factories import build, events

FORM = {"name": "Acme Corp", "kind": "corporation", "timezone": "America/New_York", "invoice_day": "1",
        "invoicing_enabled": "y"}  # fmt: skip


def test_customer_edit_when_billing_details_given_saves_and_audits_them(app, admin_client, tenants):
    response = admin_client.post(
        f"/admin/customers/{tenants['customer']}/edit",
        data={
            **FORM,
            "billing_address": "Acme Corp\r\n\r\n1 Main St\r\nSpringfield",
            "payment_terms_days": "45",
            "locale": "de_DE",
        },  # fmt: skip
    )
    assert response.status_code == 302
    with app.app_context():
        customer = db.session.get(Customer, tenants["customer"])
        assert customer.billing_address_lines == ["Acme Corp", "1 Main St", "Springfield"]
        assert (customer.payment_terms, customer.locale) == ("Net 45", "de_DE")
    after = events(app, "customer.updated")[0].details["after"]
    assert after == {"billing_address": "Acme Corp\n1 Main St\nSpringfield", "payment_terms_days": 45,
                     "locale": "de_DE"}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("payment_terms_days", "400", "Choose from 0 to 180 days."), ("locale", "xx_XX", "is not offered")],
)
def test_customer_edit_when_billing_detail_bad_shows_error_next_to_field(
    admin_client, tenants, field, value, message
):
    response = admin_client.post(f"/admin/customers/{tenants['customer']}/edit", data={**FORM, field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_new_customer_form_offers_billing_fields(admin_client):
    page = admin_client.get("/admin/customers/new").get_data(as_text=True)
    assert (
        'name="billing_address"' in page and 'name="payment_terms_days"' in page and 'name="locale"' in page
    )


def test_payment_terms_zero_read_due_on_receipt(app, tenants):
    with app.app_context():
        customer = db.session.get(Customer, tenants["customer"])
        accounts.update_customer(customer, name=customer.name, kind="corporation", timezone="UTC",
                                 invoice_day=1, invoicing_enabled=True, payment_terms_days=0)  # fmt: skip
        assert customer.payment_terms == "Due on receipt"


def test_due_date_counts_from_the_approval_day_where_the_customer_is(app, tenants):
    with app.app_context():
        customer = db.session.get(Customer, tenants["customer"])  # America/New_York, Net 30
        late_evening = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC)  # Nov 1, 22:00 in New York
        assert due_date(customer, late_evening) == dt.date(2026, 12, 1)


def test_approval_sets_due_date_and_audits_it(app, billing):
    billing.add(120000, "2026-10-03")
    build(app)
    with app.app_context():
        invoice = db.session.scalar(select(Invoice))
        lifecycle.approve(invoice, by=None)
        db.session.commit()
        assert invoice.due_on == due_date(invoice.customer, invoice.decided_at)
        assert 29 <= (invoice.due_on - invoice.decided_at.date()).days <= 31  # Net 30 in the customer's zone
    [event] = events(app, "invoice.approved")
    assert event.details["due_on"] == invoice.due_on.isoformat()
